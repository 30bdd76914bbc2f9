import { describe, expect, it } from 'vitest';
import { sandboxConfigSchema } from '../../src/config/schema.js';
import { resolveLimits } from '../../src/sandbox/limits.js';

const { limits: defaults, maxLimits } = sandboxConfigSchema.parse({});

describe('limits a run gets', () => {
  it('are the defaults, overridden by what the run asks, under the ceilings', () => {
    expect(resolveLimits(undefined, defaults, maxLimits)).toEqual(defaults);
    const asked = resolveLimits({ memoryBytes: 64 * 2 ** 20, wallTimeMs: 10 ** 9 }, defaults, maxLimits);
    expect(asked).toMatchObject({ memoryBytes: 64 * 2 ** 20, wallTimeMs: maxLimits.wallTimeMs });
  });

  it('never go where the kernel refuses them or reads them as "unlimited"', () => {
    const l = resolveLimits(
      { cpus: 0.001, diskBytes: 0, maxProcesses: -1, maxOpenFiles: 0, memoryBytes: 1, maxFileSizeBytes: 0 },
      defaults,
    );
    expect(l.cpus).toBe(0.01); // a CFS quota of 1000 µs in the 100 ms period, the kernel's least
    expect(l.diskBytes).toBeGreaterThan(0); // tmpfs size=0 is unbounded
    expect(l.maxProcesses).toBeGreaterThanOrEqual(4);
    expect(l.maxOpenFiles).toBeGreaterThanOrEqual(16);
    expect(l.memoryBytes).toBeGreaterThanOrEqual(8 * 2 ** 20);
    expect(l.maxFileSizeBytes).toBeGreaterThanOrEqual(1024);
  });

  it('never reach a timer past what setTimeout can hold, and replace what is not a number', () => {
    const l = resolveLimits({ wallTimeMs: 2 ** 40, cpuTimeMs: Number.NaN, maxProcesses: 4.7 }, defaults);
    expect(l.wallTimeMs).toBe(2 ** 31 - 1);
    expect(l.cpuTimeMs).toBe(defaults.cpuTimeMs);
    expect(l.maxProcesses).toBe(4);
  });
});
