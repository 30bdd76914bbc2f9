import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startLocalRedis } from '../../src/queue/redis-server.js';
import type { ExecutionResponse } from '../../src/runner/execution.js';
import { call, startTestServer } from '../helpers/server.js';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const listening = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-life-'));
  dirs.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('local redis-server', () => {
  it('starts on a free loopback port without persistence and stops by pid', async () => {
    const dir = tempDir();
    const redis = await startLocalRedis({ dir });
    expect(redis.url).toBe(`redis://127.0.0.1:${redis.port}`);
    expect(alive(redis.pid)).toBe(true);
    expect(readdirSync(dir)).toContain(`redis-${process.pid}.pid`);
    await redis.stop();
    await redis.stop(); // twice is harmless
    expect(alive(redis.pid)).toBe(false);
    expect(await listening(redis.port)).toBe(false);
    expect(readdirSync(dir)).not.toContain(`redis-${process.pid}.pid`);
    expect(readdirSync(dir).some((f) => f.endsWith('.rdb') || f.endsWith('.aof'))).toBe(false);
  });

  it('kills a redis-server left behind by a crashed owner', async () => {
    const dir = tempDir();
    const orphan = spawn(
      '/usr/bin/redis-server',
      ['--port', '0', '--unixsocket', join(dir, 'orphan.sock'), '--save', '', '--dir', dir],
      { stdio: 'ignore', detached: true },
    );
    const exited = new Promise((r) => orphan.once('exit', r));
    await new Promise((r) => setTimeout(r, 200));
    expect(orphan.exitCode).toBeNull();
    // Owner pid 2^22 + 1 cannot exist (above any pid_max): its server is an orphan.
    writeFileSync(join(dir, 'redis-4194305.pid'), String(orphan.pid));
    const redis = await startLocalRedis({ dir });
    await exited;
    expect(existsSync(join(dir, 'redis-4194305.pid'))).toBe(false);
    await redis.stop();
  });
});

describe('graceful shutdown', () => {
  it('answers the execution in flight, then releases Redis and the port', async () => {
    const t = await startTestServer({ workers: { concurrency: 1 } });
    const redisPid = t.server.localRedis!.pid;
    const port = Number(new URL(t.url).port);
    const inFlight = call<ExecutionResponse>(t.url, 'POST', '/execute', {
      code: 'import time\ntime.sleep(1)\nprint("finished")',
      language: 'python',
    });
    await new Promise((r) => setTimeout(r, 300));
    // One worker slot: this one waits in the queue behind the first.
    const queued = call<{ request_id: string; status: string }>(t.url, 'POST', '/execute', {
      code: 'print("never started")',
      language: 'python',
    });
    await new Promise((r) => setTimeout(r, 100));
    const closed = t.close();
    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'success', output: 'finished\n' });
    // Not started before the shutdown: answered with its id rather than left hanging.
    const waiting = await queued;
    expect(waiting.status).toBe(202);
    expect(waiting.body.status).toBe('pending');
    const late = await call(t.url, 'GET', '/health').catch(() => ({ status: 503 }));
    expect(late.status).toBe(503);
    await closed;
    expect(alive(redisPid)).toBe(false);
    expect(await listening(port)).toBe(false);
  });
});
