import { afterAll, describe, expect, it } from 'vitest';
import { createHoldings, holdProcess } from '../../src/sandbox/holdings.js';
import { createSpawner, LAUNCHER } from '../../src/sandbox/spawner.js';
import { LANGUAGES, buildRun, languageSandbox } from '../../src/languages/index.js';
import {
  NOTHING_LEFT,
  isSpawner,
  processParents,
  runCode,
  settledLeftovers,
  testEngine,
  waitFor,
} from './helpers.js';

/**
 * The bwrap backend's spawner (`warden-launch --serve`, src/sandbox/spawner.ts): the small process
 * that forks sandboxes for the service. What happens when it dies under a run, and that it goes with
 * the engine.
 */

/** This test process's spawners. */
function spawners(): number[] {
  return [...processParents()].filter(([pid, { ppid }]) => isSpawner(pid, ppid)).map(([pid]) => pid);
}

/** Processes below `pid`, however deep. */
function below(pid: number): number[] {
  const map = processParents();
  return [...map.keys()].filter((p) => {
    for (let up = map.get(p)?.ppid; up !== undefined && up > 1; up = map.get(up)?.ppid)
      if (up === pid) return true;
    return false;
  });
}

describe('the sandbox spawner', () => {
  const engine = testEngine();
  afterAll(() => engine.shutdown());

  it('dying under a run ends it as an error of Warden, takes its sandbox along, and is replaced', async () => {
    expect((await runCode(engine, 'python', 'print(1)')).stdout).toBe('1\n');
    const [first] = spawners();
    expect(first).toBeDefined();
    const running = runCode(engine, 'python', 'import time\ntime.sleep(60)\n', {
      limits: { wallTimeMs: 30_000 },
    });
    // bwrap, its sandbox's init and the program.
    expect(await waitFor(() => below(first!).length >= 3)).toBe(true);
    process.kill(first!, 'SIGKILL');
    const r = await running;
    expect(r.status).toBe('error');
    expect(r.error).toMatch(/spawner exited/);
    await engine.settle();
    expect(await settledLeftovers()).toEqual(NOTHING_LEFT);

    expect((await runCode(engine, 'python', 'print(2)')).stdout).toBe('2\n');
    const now = spawners();
    expect(now).toHaveLength(1);
    expect(now[0]).not.toBe(first);
  });

  it('goes with the engine, and every sandbox with it', async () => {
    const own = testEngine();
    const before = new Set(spawners());
    const running = runCode(own, 'python', 'import time\ntime.sleep(60)\n', {
      limits: { wallTimeMs: 30_000 },
    });
    expect(await waitFor(() => spawners().some((p) => !before.has(p) && below(p).length >= 3))).toBe(true);
    await own.shutdown();
    expect((await running).status).not.toBe('success');
    expect(spawners().filter((p) => !before.has(p))).toEqual([]);
    expect(await settledLeftovers()).toEqual(NOTHING_LEFT);
  });

  it('a process that ended before its caller looked is still released (its pid and exit came together)', async () => {
    const spawner = createSpawner(LAUNCHER);
    try {
      const nulls = [{ kind: 'null' }, { kind: 'null' }, { kind: 'null' }] as const;
      const p = await spawner.spawn([...nulls], ['--keep-fds', '2', '--', '/bin/true']);
      expect(await waitFor(() => p.exitCode !== null)).toBe(true);
      const held = createHoldings();
      const exited = holdProcess(held, p);
      await held.release();
      await exited;
      expect(p.exitCode).toBe(0);
    } finally {
      await spawner.close();
    }
  });

  it('takes a stdin far larger than a socket buffer, pooled and cold, without stopping the service', async () => {
    const pooled = testEngine({ pool: { size: 1 } });
    try {
      const spec = await buildRun(LANGUAGES.python, 'import sys\nprint(len(sys.stdin.read()))', {
        stdin: 'x'.repeat(4_000_000),
      });
      pooled.prewarm(languageSandbox(LANGUAGES.python), 1);
      expect(await pooled.poolReady(20_000)).toBe(true);
      const warm = await pooled.run(spec);
      expect(warm).toMatchObject({ status: 'success', stdout: '4000000\n', pooled: true });
      const cold = await engine.run(spec);
      expect(cold).toMatchObject({ status: 'success', stdout: '4000000\n' });
    } finally {
      await pooled.shutdown();
    }
  });
});
