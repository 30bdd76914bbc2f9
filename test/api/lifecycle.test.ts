import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { redisTarget } from '../../src/queue/connection.js';
import { startLocalRedis, type LocalRedis } from '../../src/queue/redis-server.js';
import type { ExecutionResponse } from '../../src/runner/index.js';
import { isAlive } from '../../src/sandbox/pids.js';
import { startServer } from '../../src/server.js';
import { call, testConfig } from '../helpers/server.js';
import { until } from '../helpers/wait.js';

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-life-'));
  dirs.push(dir);
  return dir;
};
const pids: number[] = [];
afterAll(() => {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const client = (redis: LocalRedis) => new Redis({ ...redisTarget(redis.url), maxRetriesPerRequest: 1 });

/** Appended to the append-only file (in the page cache: what survives a SIGKILL of the server). */
const appended = (dir: string, text: string) => () => {
  const aofDir = join(dir, 'appendonlydir');
  if (!existsSync(aofDir)) return undefined;
  return readdirSync(aofDir).some((f) => readFileSync(join(aofDir, f), 'latin1').includes(text))
    ? true
    : undefined;
};

describe('Redis addresses', () => {
  it('a unix:// URL is a socket path (with its db); redis:// URLs pass as they are', () => {
    expect(redisTarget('unix:///srv/warden/redis/redis.sock')).toEqual({
      path: '/srv/warden/redis/redis.sock',
    });
    expect(redisTarget('unix:///tmp/with%20space.sock?db=2')).toEqual({
      path: '/tmp/with space.sock',
      db: 2,
    });
    expect(redisTarget('redis://:secret@cache:6379/1')).toEqual({ url: 'redis://:secret@cache:6379/1' });
  });
});

describe('local redis-server', () => {
  it('listens only on a unix socket in its dir, with an fsynced append-only file, and stops by pid', async () => {
    const dir = tempDir();
    const redis = await startLocalRedis({ dir });
    expect(redis.url).toBe(`unix://${join(dir, 'redis.sock')}`);
    expect(isAlive(redis.pid)).toBe(true);
    expect(readdirSync(dir)).toContain(`redis-${process.pid}.pid`);
    const r = client(redis);
    try {
      expect(await r.config('GET', 'port')).toEqual(['port', '0']);
      expect(await r.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
      expect(await r.config('GET', 'appendfsync')).toEqual(['appendfsync', 'everysec']);
      expect(await r.config('GET', 'dir')).toEqual(['dir', dir]);
    } finally {
      r.disconnect();
    }
    const pid = redis.pid;
    await redis.stop();
    await redis.stop(); // twice is harmless
    expect(isAlive(pid)).toBe(false);
    expect(readdirSync(dir)).not.toContain(`redis-${process.pid}.pid`);
  });

  it('keeps the queue across a stop and a start on the same dir', async () => {
    const dir = tempDir();
    const first = await startLocalRedis({ dir });
    const r1 = client(first);
    await r1.set('kept', 'across restarts');
    r1.disconnect();
    await first.stop();
    const second = await startLocalRedis({ dir });
    const r2 = client(second);
    try {
      expect(await r2.get('kept')).toBe('across restarts');
    } finally {
      r2.disconnect();
      await second.stop();
    }
  });

  it('is started again when it dies; a client reconnects to the same socket and finds its data', async () => {
    const dir = tempDir();
    const restarted: { signal: string | null }[] = [];
    const redis = await startLocalRedis({ dir, onRestart: (info) => restarted.push(info) });
    const r = new Redis({ ...redisTarget(redis.url), maxRetriesPerRequest: null });
    try {
      await r.set('survivor', 'yes');
      await until(appended(dir, 'survivor'), 10_000, 25, 'the write in the append-only file');
      const killed = redis.pid;
      process.kill(killed, 'SIGKILL');
      await until(() => (redis.pid !== killed && isAlive(redis.pid) ? true : undefined), 30_000);
      expect(restarted).toEqual([expect.objectContaining({ signal: 'SIGKILL' })]);
      expect(redis.restarts).toBe(1);
      expect(await r.get('survivor')).toBe('yes');
    } finally {
      r.disconnect();
      await redis.stop();
    }
  });

  it('stops a redis-server left behind by a dead owner, and refuses one a live process owns', async () => {
    const dir = tempDir();
    const socket = join(dir, 'orphan.sock');
    const orphan = spawn(
      '/usr/bin/redis-server',
      ['--port', '0', '--unixsocket', socket, '--save', '', '--dir', dir],
      { stdio: 'ignore', detached: true },
    );
    pids.push(orphan.pid!);
    const exited = new Promise((r) => orphan.once('exit', r));
    await until(() => (existsSync(socket) ? true : undefined), 10_000);

    // A live owner (this sleeper) means another service uses the dir.
    const owner = spawn('/bin/sleep', ['600'], { stdio: 'ignore' });
    pids.push(owner.pid!);
    writeFileSync(join(dir, `redis-${owner.pid}.pid`), String(orphan.pid));
    await expect(startLocalRedis({ dir })).rejects.toThrow(/belongs to the running process/);
    expect(orphan.exitCode).toBeNull();

    // Its owner gone, the server is an orphan: stopped, its pid file removed.
    owner.kill('SIGKILL');
    await new Promise((r) => owner.once('exit', r));
    const redis = await startLocalRedis({ dir });
    await exited;
    expect(existsSync(join(dir, `redis-${owner.pid}.pid`))).toBe(false);
    await redis.stop();
  });

  it('refuses a socket path the kernel cannot bind, naming the way out', async () => {
    const dir = join(tempDir(), 'x'.repeat(120));
    await expect(startLocalRedis({ dir })).rejects.toThrow(/longer than 107 bytes.*REDIS_URL/);
  });
});

describe('graceful shutdown', () => {
  it('answers the execution in flight; one not started yet runs after the next start', async () => {
    const dir = tempDir();
    const config = testConfig(dir, { workers: { concurrency: 1 } });
    const server = await startServer(config);
    const redisPid = server.localRedis!.pid;
    const port = Number(new URL(server.url).port);
    const counts = async () =>
      (await call<{ checks: { queue: { waiting: number; active: number } } }>(server.url, 'GET', '/health'))
        .body.checks.queue;

    // The first /health probes every backend (a cold sandbox each, Docker's and gVisor's in seconds):
    // done before the 1-second execution starts, so that a poll can see it in flight.
    await counts();
    const inFlight = call<ExecutionResponse>(server.url, 'POST', '/execute', {
      code: 'import time\ntime.sleep(1)\nprint("finished")',
      language: 'python',
    });
    await until(async () => ((await counts()).active === 1 ? true : undefined), 15_000);
    // One worker slot: this one waits in the queue behind the first.
    const queued = call<{ request_id: string; status: string }>(server.url, 'POST', '/execute', {
      code: 'print("ran after the restart")',
      language: 'python',
    });
    await until(async () => ((await counts()).waiting === 1 ? true : undefined), 15_000);
    const closed = server.close();
    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'success', output: 'finished\n' });
    // Not started before the shutdown: answered with its id rather than left hanging.
    const waiting = await queued;
    expect(waiting.status).toBe(202);
    expect(waiting.body.status).toBe('pending');
    await closed;
    expect(isAlive(redisPid)).toBe(false);
    await expect(fetch(`http://127.0.0.1:${port}/health`)).rejects.toThrow();

    const again = await startServer(config);
    try {
      const done = await until(async () => {
        const poll = await call<{ status: string; response: ExecutionResponse | null }>(
          again.url,
          'GET',
          `/executions/${waiting.body.request_id}`,
        );
        return poll.body.status === 'done' ? poll.body.response : undefined;
      }, 30_000);
      expect(done).toMatchObject({ status: 'success', output: 'ran after the restart\n' });
    } finally {
      await again.close();
    }
  });
});
