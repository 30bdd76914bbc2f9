import { z } from 'zod';

/** The Piston-compatible API (`/api/v2/runtimes`, `/api/v2/execute`). */
export const pistonConfigSchema = z
  .object({
    /**
     * Static analysis of what `/api/v2/execute` runs, under the `analysis` policy like /execute.
     * false: findings reject nothing there (profile `off` for that route only), for drop-in use by
     * tools whose programs import `os` or `fs`; code that does not parse still never runs, and the
     * sandbox holds every limit either way.
     */
    analysis: z.boolean().default(true),
  })
  .strict();

export type PistonConfig = z.infer<typeof pistonConfigSchema>;
