import type { Limits } from './types.js';

export type LimitCeilings = Pick<Limits, 'wallTimeMs' | 'cpuTimeMs' | 'memoryBytes' | 'cpus'>;

/** Fills a run's limits from the defaults and holds them under the operator's ceilings. */
export function resolveLimits(
  requested: Partial<Limits> | undefined,
  defaults: Limits,
  ceilings?: LimitCeilings,
): Limits {
  const limits = { ...defaults };
  for (const [key, value] of Object.entries(requested ?? {}) as [keyof Limits, number | undefined][]) {
    if (value !== undefined) limits[key] = value;
  }
  if (ceilings) {
    for (const key of Object.keys(ceilings) as (keyof LimitCeilings)[]) {
      limits[key] = Math.min(limits[key], ceilings[key]);
    }
  }
  return limits;
}

/** Limits a pre-started sandbox can still take at the start of its run (cgroup knobs, timers, caps). */
export const ADJUSTABLE_LIMITS = [
  'wallTimeMs',
  'cpuTimeMs',
  'memoryBytes',
  'cpus',
  'maxProcesses',
  'maxOutputBytes',
] as const satisfies readonly (keyof Limits)[];
