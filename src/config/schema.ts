import { z } from 'zod';
import { BACKEND_NAMES } from '../sandbox/types.js';

const MiB = 1024 * 1024;

/** Limits a run gets when the request names none; every field is overridable per run. */
const limitsSchema = z
  .object({
    wallTimeMs: z.number().int().positive().default(10_000),
    cpuTimeMs: z.number().int().positive().default(5_000),
    memoryBytes: z
      .number()
      .int()
      .min(16 * MiB)
      .default(256 * MiB),
    cpus: z.number().positive().max(64).default(1),
    maxProcesses: z.number().int().min(4).default(64),
    maxFileSizeBytes: z
      .number()
      .int()
      .positive()
      .default(16 * MiB),
    diskBytes: z
      .number()
      .int()
      .positive()
      .default(64 * MiB),
    maxOutputBytes: z
      .number()
      .int()
      .positive()
      .default(1 * MiB),
    maxOpenFiles: z.number().int().min(16).default(256),
  })
  .strict();

/** Ceilings no request may go past. */
const maxLimitsSchema = z
  .object({
    wallTimeMs: z.number().int().positive().default(60_000),
    cpuTimeMs: z.number().int().positive().default(60_000),
    memoryBytes: z
      .number()
      .int()
      .positive()
      .default(2048 * MiB),
    cpus: z.number().positive().default(4),
  })
  .strict();

export const sandboxConfigSchema = z
  .object({
    backend: z.enum(BACKEND_NAMES).default('bwrap'),
    limits: limitsSchema.default(limitsSchema.parse({})),
    maxLimits: maxLimitsSchema.default(maxLimitsSchema.parse({})),
    /** Host uids the sandboxes run as (one per concurrent sandbox), when Warden runs as root. */
    uidBase: z.number().int().min(1000).default(640_000),
    uidCount: z.number().int().min(1).max(65_536).default(1024),
    /** cgroup parent (under each v1 hierarchy, or under the v2 root). */
    cgroupParent: z.string().regex(/^[A-Za-z0-9_.-]+$/).default('warden'),
    /** Pre-started sandboxes kept per language. 0 disables the pool. */
    pool: z
      .object({
        size: z.number().int().min(0).max(64).default(2),
        perLanguage: z.record(z.string(), z.number().int().min(0).max(64)).default({}),
        /** A pre-started sandbox older than this is replaced. */
        maxIdleMs: z.number().int().positive().default(300_000),
      })
      .strict()
      .default({ size: 2, perLanguage: {}, maxIdleMs: 300_000 }),
  })
  .strict();

export type SandboxConfig = z.infer<typeof sandboxConfigSchema>;

export const analysisConfigSchema = z
  .object({
    /** Findings at or above this severity reject the code. */
    rejectAt: z.enum(['low', 'medium', 'high', 'critical']).default('high'),
    maxCodeChars: z.number().int().positive().default(50_000),
    /** `range(N)` / loops with a literal bound above this are flagged as DoS shapes. */
    maxLiteralRange: z.number().int().positive().default(10_000_000),
  })
  .strict();

export type AnalysisConfig = z.infer<typeof analysisConfigSchema>;

export const configSchema = z
  .object({
    dataDir: z.string().default('.warden'),
    sandbox: sandboxConfigSchema.default(sandboxConfigSchema.parse({})),
    analysis: analysisConfigSchema.default(analysisConfigSchema.parse({})),
  })
  .strict();

export type WardenConfig = z.infer<typeof configSchema>;
