import type { Limits } from './types.js';

export type LimitCeilings = Pick<Limits, 'wallTimeMs' | 'cpuTimeMs' | 'memoryBytes' | 'cpus'>;

const MiB = 1024 * 1024;

/**
 * The smallest (and largest) values the kernel and the supervisor accept, so that no value a caller
 * passes can make a run fail inside Warden (the API refuses out-of-range fields with a 400 before
 * this; the engine clamps anyway). cpus: a CFS quota under 1000 µs of the 100 ms period is refused by
 * the kernel; diskBytes: a tmpfs of size 0 is unbounded; wallTimeMs: timers past 2^31-1 ms fire at
 * once; maxProcesses: bwrap, its init and the program are three already; maxOpenFiles: bwrap opens
 * a few files of its own before the program starts.
 */
const RANGE: Record<keyof Limits, [min: number, max: number]> = {
  wallTimeMs: [1, 2 ** 31 - 1],
  cpuTimeMs: [1, 2 ** 31 - 1],
  memoryBytes: [8 * MiB, Number.MAX_SAFE_INTEGER],
  cpus: [0.01, 1024],
  maxProcesses: [4, 4_194_304],
  maxFileSizeBytes: [1024, Number.MAX_SAFE_INTEGER],
  diskBytes: [1 * MiB, Number.MAX_SAFE_INTEGER],
  maxOutputBytes: [0, 2 ** 30],
  maxOpenFiles: [16, 1_048_576],
};

/**
 * Fills a run's limits from the defaults, holds them under the operator's ceilings and inside what
 * the kernel accepts (a value that is not a finite number is replaced by the default).
 */
export function resolveLimits(
  requested: Partial<Limits> | undefined,
  defaults: Limits,
  ceilings?: LimitCeilings,
): Limits {
  const limits = { ...defaults };
  for (const [key, value] of Object.entries(requested ?? {}) as [keyof Limits, number | undefined][]) {
    if (value !== undefined && key in RANGE) limits[key] = value;
  }
  if (ceilings) {
    for (const key of Object.keys(ceilings) as (keyof LimitCeilings)[]) {
      limits[key] = Math.min(limits[key], ceilings[key]);
    }
  }
  for (const key of Object.keys(RANGE) as (keyof Limits)[]) {
    const [min, max] = RANGE[key];
    const value = Number.isFinite(limits[key]) ? limits[key] : defaults[key];
    const whole = key === 'cpus' ? value : Math.floor(value);
    limits[key] = Math.min(max, Math.max(min, whole));
  }
  return limits;
}

/** Limits the supervisor enforces itself (timers, output caps): any started sandbox can take them. */
export const SUPERVISED_LIMITS = [
  'wallTimeMs',
  'maxOutputBytes',
] as const satisfies readonly (keyof Limits)[];

/** With cgroups, these are kernel knobs of the run's cgroup, writable until the run begins. */
export const CGROUP_LIMITS = [
  'cpuTimeMs',
  'memoryBytes',
  'cpus',
  'maxProcesses',
] as const satisfies readonly (keyof Limits)[];
