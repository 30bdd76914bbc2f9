import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanup, spawnWarden, tempDir, type WardenProcess } from '../helpers/processes.js';
import { call } from '../helpers/server.js';
import { cgroupParentDirs } from '../sandbox/helpers.js';
import { until } from '../helpers/wait.js';
import { marked } from './helpers.js';

/**
 * 5,000 synchronous `POST /execute` at concurrency 16 against `warden serve`: every one answered with
 * its own output, the service's memory and open descriptors flat after warm-up, and nothing of any
 * sandbox left once it stops. Takes minutes: `WARDEN_SOAK=1` (npm run test:soak) runs it.
 */
afterAll(cleanup);

const TOTAL = 5000;
const WARM_UP = 500;
const CONCURRENCY = 16;

function rssBytes(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmRSS:'));
  return Number(line?.split(/\s+/)[1]) * 1024;
}

const openFds = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;

/** What sandboxes of process `pid` left: cgroups and temp dirs named after it, uid leases it holds. */
function leftoversOf(pid: number, uidDir = '/run/warden/uids') {
  const mine = (name: string) => name.startsWith(`${pid}-`);
  return {
    cgroups: cgroupParentDirs().flatMap((d) => (existsSync(d) ? readdirSync(d).filter(mine) : [])),
    uidLeases: existsSync(uidDir)
      ? readdirSync(uidDir).filter((f) => {
          try {
            return readFileSync(join(uidDir, f), 'utf8') === String(pid);
          } catch {
            return false;
          }
        })
      : [],
    tempDirs: readdirSync(tmpdir()).filter((n) => n.startsWith(`warden-run-${pid}-`)),
  };
}

describe.skipIf(process.env.WARDEN_SOAK !== '1')('soak: 5,000 executions at concurrency 16', () => {
  it('loses no answer; RSS and open fds stay flat after warm-up; nothing left behind', async () => {
    const serve: WardenProcess = await spawnWarden('serve', {
      dataDir: tempDir(),
      config: { server: { maxQueueDepth: 1000 } },
    });
    const wrong: string[] = [];
    let warm: { rss: number; fds: number } | undefined;
    let sent = 0;
    const one = async () => {
      for (let i = sent++; i < TOTAL; i = sent++) {
        if (i === WARM_UP) warm = { rss: rssBytes(serve.pid), fds: openFds(serve.pid) };
        const res = await call<{ status: string; output: string }>(serve.url, 'POST', '/execute', {
          code: marked(i),
          language: 'python',
        });
        if (res.status !== 200 || res.body.output !== `run ${i}\n`)
          wrong.push(`${i}: ${res.status} ${JSON.stringify(res.body).slice(0, 200)}`);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, one));
    const end = { rss: rssBytes(serve.pid), fds: openFds(serve.pid) };
    process.stdout.write(
      `soak: RSS ${(warm!.rss / 2 ** 20).toFixed(1)} MiB after ${WARM_UP} runs, ${(end.rss / 2 ** 20).toFixed(1)} MiB after ${TOTAL}; open fds ${warm!.fds} then ${end.fds}\n`,
    );
    expect(wrong).toEqual([]);
    // Generous bounds: a leak of a few hundred bytes per run, or one fd per run, goes past them.
    expect(end.rss - warm!.rss).toBeLessThan(150 * 2 ** 20);
    expect(end.fds - warm!.fds).toBeLessThan(50);

    expect((await serve.stop()).code).toBe(0);
    const left = await until(() => {
      const l = leftoversOf(serve.pid);
      return Object.values(l).every((v) => v.length === 0) ? l : undefined;
    }, 10_000).catch(() => leftoversOf(serve.pid));
    expect(left).toEqual({ cgroups: [], uidLeases: [], tempDirs: [] });
  }, 1_800_000);
});
