import { z } from 'zod';
import { duration } from './duration.js';

/** The `jobs` section of the configuration (SPEC §7): commands with files, limits, logs and artifacts. */

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/**
 * Programs a job may start, by name (looked up in /usr/bin, then /bin) or absolute path. A shell or
 * anything that runs other programs by name (env, xargs, find -exec) makes the list meaningless.
 */
export const DEFAULT_ALLOWED_COMMANDS = [
  'python3',
  'node',
  'cat',
  'ls',
  'grep',
  'sort',
  'uniq',
  'wc',
  'head',
  'tail',
  'cut',
  'tr',
  'echo',
  'true',
  'sleep',
  'cp',
  'mkdir',
  'touch',
  'base64',
  'sha256sum',
  'md5sum',
  'gzip',
  'tar',
  'curl',
  'wget',
];

const jobLimitsSchema = z
  .object({
    /** Wall-clock time of the command (→ `timeout`). */
    timeoutSeconds: z.number().positive(),
    /** CPU bandwidth in cores. */
    cpu: z.number().positive().max(64),
    /** Memory of all the job's processes together; /box, /tmp and /out count against it too. */
    memoryBytes: z
      .number()
      .int()
      .min(16 * MiB),
    /** Size of each writable area: /box, /tmp and /out. */
    diskBytes: z.number().int().min(MiB),
  })
  .strict();

export const jobsConfigSchema = z
  .object({
    /** BullMQ queue between POST /jobs and the job workers. */
    queue: z
      .string()
      .regex(/^[A-Za-z0-9_.-]+$/)
      .default('warden-jobs'),
    /**
     * Programs a job may start, by name (looked up in /usr/bin, then /bin; names not installed are
     * dropped) or absolute path. Never add a shell or a program that runs others by name (`sh`, `env`,
     * `xargs`): `sh -c` would run anything and make the list meaningless.
     */
    allowedCommands: z
      .array(
        z.string().regex(/^(\/[A-Za-z0-9_.+-]+)+$|^[A-Za-z0-9_.+-]+$/, 'a program name or absolute path'),
      )
      .default(DEFAULT_ALLOWED_COMMANDS),
    /** What a job gets for what its request leaves out. */
    defaults: jobLimitsSchema.default({
      timeoutSeconds: 30,
      cpu: 1,
      memoryBytes: 512 * MiB,
      diskBytes: GiB,
    }),
    /**
     * Ceilings requests are clamped to. The sandbox's own ceilings (sandbox.maxLimits) still apply
     * on top: raise both for long jobs.
     */
    maxLimits: jobLimitsSchema.default({
      timeoutSeconds: 600,
      cpu: 4,
      memoryBytes: 2 * GiB,
      diskBytes: 4 * GiB,
    }),
    /** Body limit of POST /jobs (files travel base64 inside it). */
    maxRequestBytes: z
      .number()
      .int()
      .min(1024)
      .default(16 * MiB),
    /** Files one POST /jobs may carry. */
    maxFiles: z.number().int().min(0).max(1000).default(100),
    /** The largest file a POST /jobs may carry (decoded). */
    maxFileBytes: z
      .number()
      .int()
      .positive()
      .default(8 * MiB),
    /** Each of stdout and stderr is kept (stored, streamed) up to this; past it the job is stopped. */
    maxLogBytes: z
      .number()
      .int()
      .min(1024)
      .default(4 * MiB),
    /** Lines kept (stored, streamed) per job; the rest is dropped with a note, the job goes on. */
    maxLogLines: z.number().int().min(100).default(100_000),
    /** What is collected from /out; the rest is listed as skipped with the reason. */
    artifacts: z
      .object({
        /** Files collected from one job's /out. */
        maxFiles: z.number().int().min(0).default(200),
        /** The largest file collected. */
        maxFileBytes: z
          .number()
          .int()
          .positive()
          .default(512 * MiB),
        /** All the files of one job together. */
        maxTotalBytes: z.number().int().positive().default(GiB),
        /** How long a signed artifact URL stays valid. */
        urlTtlSeconds: z
          .number()
          .int()
          .min(1)
          .max(7 * 24 * 3600)
          .default(900),
      })
      .strict()
      .default({ maxFiles: 200, maxFileBytes: 512 * MiB, maxTotalBytes: GiB, urlTtlSeconds: 900 }),
    network: z
      .object({
        /** false: no job may ask for outbound network (400). */
        enabled: z.boolean().default(true),
        /** Hosts or CIDRs the egress proxy may reach although they are loopback/private/metadata. */
        allowPrivate: z.array(z.string().min(1)).default([]),
        /** Ports refused whatever the request says (the seed's list plus Redis). */
        blockedPorts: z.array(z.number().int().min(1).max(65_535)).default([22, 25, 3306, 5432, 6379]),
      })
      .strict()
      .default({ enabled: true, allowPrivate: [], blockedPorts: [22, 25, 3306, 5432, 6379] }),
    /** Finished jobs, their logs and artifacts older than this are deleted by a periodic sweep (ms or 7d, 12h…). */
    retention: duration.prefault('7d'),
    /** Tries of a job when Warden itself fails (worker died, store down); never for the job's own exit. */
    maxAttempts: z.number().int().min(1).max(20).default(3),
    /** A job whose worker stops renewing its lock this long goes to another worker. */
    jobLockMs: z.number().int().min(500).default(15_000),
    /**
     * A worker shutting down lets running jobs finish this long, then stops their sandboxes; those
     * jobs run again on another worker (Warden's interruption, not the job's failure).
     */
    shutdownGraceMs: z.number().int().min(0).default(10_000),
    /** How often a running job's worker looks for a cancellation, and SSE readers for new lines. */
    pollMs: z.number().int().min(20).max(5000).default(200),
  })
  .strict();

export type JobsConfig = z.infer<typeof jobsConfigSchema>;

/**
 * The jobs' ceilings as they really are: a job runs on the sandbox engine, which holds every run
 * under `sandbox.maxLimits` too, so the lower of the two is what a job gets (and is told).
 */
export function withinSandbox(
  jobs: JobsConfig,
  sandbox: { wallTimeMs: number; memoryBytes: number; cpus: number },
): JobsConfig {
  const max = {
    ...jobs.maxLimits,
    timeoutSeconds: Math.min(jobs.maxLimits.timeoutSeconds, sandbox.wallTimeMs / 1000),
    memoryBytes: Math.min(jobs.maxLimits.memoryBytes, sandbox.memoryBytes),
    cpu: Math.min(jobs.maxLimits.cpu, sandbox.cpus),
  };
  return { ...jobs, maxLimits: max };
}
