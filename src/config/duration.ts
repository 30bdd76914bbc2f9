import { z } from 'zod';

const DURATION_UNITS_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** Milliseconds as a number, or a string such as `7d` or `500ms`; parsed to milliseconds. */
export const duration = z
  .union([
    z.number().int().positive(),
    z.string().regex(/^\d+(ms|s|m|h|d)$/, 'must be milliseconds or a duration such as 7d, 12h, 30m, 90s'),
  ])
  .transform((value) => {
    if (typeof value === 'number') return value;
    const [, amount, unit] = /^(\d+)(ms|s|m|h|d)$/.exec(value)!;
    return Number(amount) * DURATION_UNITS_MS[unit as keyof typeof DURATION_UNITS_MS];
  })
  .pipe(z.number().int().positive());
