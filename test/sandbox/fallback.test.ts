import { describe, expect, it } from 'vitest';
import { sandboxConfigSchema } from '../../src/config/schema.js';
import { BackendUnavailableError, createEngine } from '../../src/sandbox/engine.js';
import type { FaultStep } from '../../src/sandbox/types.js';
import { runCode } from './helpers.js';

/**
 * sandbox.fallback: a configured backend that cannot run here stops the service from starting unless
 * the operator named one to use instead, and every run that fell back says where it really ran.
 * The gvisor backend is made unable to start a sandbox with the test-only fault hook (its start
 * makes a bundle dir, the `tempdir` step; bwrap's start has none), so this holds on any host.
 */
const gvisorBroken = (step: FaultStep) => {
  if (step === 'tempdir') throw new Error('injected: runsc cannot start here');
};
const engineWith = (fallback: ('bwrap' | 'process')[]) =>
  createEngine(sandboxConfigSchema.parse({ backend: 'gvisor', fallback, pool: { size: 0 } }), {
    fault: gvisorBroken,
  });

describe('sandbox.fallback', () => {
  it('without a fallback, a backend that cannot run refuses to start, saying why', async () => {
    const engine = engineWith([]);
    try {
      const refused = engine.requireUsable();
      await expect(refused).rejects.toBeInstanceOf(BackendUnavailableError);
      await expect(refused).rejects.toThrow(
        /sandbox\.backend gvisor cannot run on this host \(.*injected: runsc cannot start here\).*sandbox\.fallback/,
      );
    } finally {
      await engine.shutdown();
    }
  });

  it('with one, runs go to the fallback and each result names the backend it really used', async () => {
    const engine = engineWith(['bwrap']);
    try {
      expect(await engine.requireUsable()).toBe('bwrap');
      expect(engine.defaultBackend).toBe('bwrap');
      for (const asked of [undefined, 'gvisor' as const]) {
        const r = await runCode(engine, 'python', 'print(1)', { backend: asked });
        expect(r).toMatchObject({ status: 'success', backend: 'bwrap', isolation: 'namespaces' });
        expect(r.warnings[0]).toMatch(
          /^backend gvisor cannot run on this host \(.*\): this run used the fallback bwrap$/,
        );
      }
    } finally {
      await engine.shutdown();
    }
  });

  it('a backend that works is used as configured, the fallback untouched', async () => {
    const engine = createEngine(
      sandboxConfigSchema.parse({ backend: 'bwrap', fallback: ['process'], pool: { size: 0 } }),
    );
    try {
      expect(await engine.requireUsable()).toBe('bwrap');
      const r = await runCode(engine, 'python', 'print(1)');
      expect(r.backend).toBe('bwrap');
      expect(r.warnings.join(' ')).not.toMatch(/fallback/);
    } finally {
      await engine.shutdown();
    }
  });
});
