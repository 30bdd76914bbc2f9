import { describe, expect, it } from 'vitest';
import { sandboxConfigSchema, type SandboxConfig } from '../../src/config/schema.js';
import { createEngine, type Engine } from '../../src/sandbox/engine.js';
import type { FaultStep } from '../../src/sandbox/types.js';
import { LANGUAGES, buildRun, languageSandbox } from '../../src/languages/index.js';
import { NOTHING_LEFT, cgroupParentDirs, leftovers, settledLeftovers } from './helpers.js';

/**
 * Every resource a run takes (sandbox processes, uid lease, cgroup, temp dir) is given back on every
 * path: a failure is injected at each step of a cold and of a pooled run, and the host is then
 * searched for anything of this process left behind.
 */

const ROOT = process.getuid?.() === 0;
// A range of host uids of this test process's own, so that a small uidCount does not collide with
// other tests leasing uids at the same time.
const UID_BASE = 700_000 + (process.pid % 20_000) * 8;

function engineWith(overrides: Partial<SandboxConfig>, fault?: (step: FaultStep) => void): Engine {
  return createEngine(
    sandboxConfigSchema.parse({ pool: { size: 0 }, uidBase: UID_BASE, uidCount: 4, ...overrides }),
    {
      fault,
    },
  );
}

/** A fault hook that fails `step` once, the next time it is reached. */
function failOnce(step: FaultStep): (at: FaultStep) => void {
  let armed = true;
  return (at) => {
    if (armed && at === step) {
      armed = false;
      throw new Error(`injected failure at ${step}`);
    }
  };
}

const print = () => buildRun(LANGUAGES.python, 'print("ran")');

describe.runIf(ROOT)('leak checks look where the cgroups are', () => {
  it('finds the run cgroup directories of this host (v1 or v2)', () => {
    // Otherwise every "no cgroup left" below would pass without looking anywhere.
    expect(cgroupParentDirs().length).toBeGreaterThan(0);
  });
});

describe('a failure at any step of a cold run leaves nothing behind', () => {
  const bwrapSteps: FaultStep[] = ROOT
    ? ['uid', 'cgroup', 'spawned', 'acquired', 'limited', 'ran']
    : ['spawned', 'acquired', 'limited', 'ran'];
  it.each(bwrapSteps)('bwrap, failing at %s', async (step) => {
    const engine = engineWith({}, failOnce(step));
    const r = await engine.run(await print());
    expect(r.status).toBe('error');
    expect(r.error).toContain(`injected failure at ${step}`);
    await engine.shutdown();
    expect(await settledLeftovers()).toEqual(NOTHING_LEFT);
    // The engine still works after the failure.
    const again = createEngine(
      sandboxConfigSchema.parse({ pool: { size: 0 }, uidBase: UID_BASE, uidCount: 4 }),
    );
    expect((await again.run(await print())).stdout).toBe('ran\n');
    await again.shutdown();
    expect(await settledLeftovers()).toEqual(NOTHING_LEFT);
  });

  it.each(['tempdir', 'spawned', 'acquired', 'limited', 'ran'] as FaultStep[])(
    'process backend, failing at %s',
    async (step) => {
      const engine = engineWith({ backend: 'process' }, failOnce(step));
      const r = await engine.run(await print(), { backend: 'process' });
      expect(r.status).toBe('error');
      expect(r.error).toContain(`injected failure at ${step}`);
      await engine.shutdown();
      expect(await settledLeftovers()).toEqual(NOTHING_LEFT);
    },
  );
});

describe('a failure at any step of a pooled run leaves nothing behind', () => {
  it.each(['acquired', 'limited', 'ran'] as FaultStep[])('failing at %s', async (step) => {
    let armed: FaultStep | undefined;
    const engine = engineWith({ pool: { size: 1, perLanguage: {}, maxIdleMs: 60_000 } }, (at) => {
      if (at === armed) {
        armed = undefined;
        throw new Error(`injected failure at ${at}`);
      }
    });
    engine.prewarm(languageSandbox(LANGUAGES.python), 1);
    expect(await engine.poolReady(20_000)).toBe(true);
    armed = step;
    const r = await engine.run(await print());
    expect(r.status).toBe('error');
    expect(r.error).toContain(`injected failure at ${step}`);
    // The taken sandbox is gone while the pool's refill is up: exactly one sandbox's worth is left.
    expect(await engine.poolReady(20_000)).toBe(true);
    await engine.settle();
    if (ROOT) expect(leftovers().uidLeases).toHaveLength(1);
    await engine.shutdown();
    expect(await settledLeftovers()).toEqual(NOTHING_LEFT);
  });

  it.each((ROOT ? ['uid', 'cgroup', 'spawned'] : ['spawned']) as FaultStep[])(
    'a pre-start failing at %s',
    async (step) => {
      const engine = engineWith({ pool: { size: 1, perLanguage: {}, maxIdleMs: 60_000 } }, failOnce(step));
      engine.prewarm(languageSandbox(LANGUAGES.python), 1);
      // The failed start pauses refills; the run starts cold and succeeds.
      const r = await engine.run(await print());
      expect(r).toMatchObject({ status: 'success', stdout: 'ran\n', pooled: false });
      await engine.shutdown();
      expect(await settledLeftovers()).toEqual(NOTHING_LEFT);
    },
  );
});

describe('invalid limit values', () => {
  it('a CPU share under the kernel minimum runs pooled, again and again, leaking nothing', async () => {
    const engine = engineWith({ pool: { size: 1, perLanguage: {}, maxIdleMs: 60_000 }, uidCount: 2 });
    engine.prewarm(languageSandbox(LANGUAGES.python), 1);
    // Twice as many runs as there are uids: one leaked lease per run would exhaust them half-way.
    for (let i = 0; i < 4; i++) {
      expect(await engine.poolReady(20_000)).toBe(true);
      const r = await engine.run(
        await buildRun(LANGUAGES.python, 'print("tiny")', { limits: { cpus: 0.001 } }),
      );
      expect(r).toMatchObject({ status: 'success', stdout: 'tiny\n', pooled: true });
    }
    await engine.shutdown();
    expect(await settledLeftovers()).toEqual(NOTHING_LEFT);
  });

  it('values the kernel would refuse or read as "unlimited" are clamped, cold too', async () => {
    const engine = engineWith({});
    const r = await engine.run(
      await buildRun(LANGUAGES.python, 'print("ok")', {
        limits: {
          cpus: 0,
          diskBytes: 0,
          maxProcesses: 0,
          maxOpenFiles: 0,
          memoryBytes: 1,
          maxFileSizeBytes: 0,
        },
      }),
    );
    expect(r).toMatchObject({ status: 'success', stdout: 'ok\n' });
    await engine.shutdown();
    expect(await settledLeftovers()).toEqual(NOTHING_LEFT);
  });
});
