import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { BACKEND_NAMES } from '../sandbox/types.js';
import { artifactsConfigSchema } from './artifacts.js';
import { authConfigSchema, corsConfigSchema, isLoopbackHost, resolveAuthMode } from './auth.js';
import { duration } from './duration.js';
import { jobsConfigSchema, withinSandbox } from './jobs.js';
import { pistonConfigSchema } from './piston.js';
import { quotasConfigSchema } from './quotas.js';
import { webhooksConfigSchema } from './webhooks.js';

const MiB = 1024 * 1024;

/** Limits a run gets when the request names none; every field is overridable per run. */
const limitsSchema = z
  .object({
    /** Wall-clock time of one run (→ `timeout`). */
    wallTimeMs: z.number().int().positive().default(10_000),
    /** CPU time of one run, all its processes together (→ `timeout`). */
    cpuTimeMs: z.number().int().positive().default(5_000),
    /** Memory of all the run's processes together, the cgroup's limit (→ `memory_limit_exceeded`). */
    memoryBytes: z
      .number()
      .int()
      .min(16 * MiB)
      .default(256 * MiB),
    /** CPU bandwidth in cores (0.5 = half of one core). */
    cpus: z.number().positive().max(64).default(1),
    /** Processes and threads the run may have at once (fork bombs stop here). */
    maxProcesses: z.number().int().min(4).default(64),
    /** The largest file the run may write. */
    maxFileSizeBytes: z
      .number()
      .int()
      .positive()
      .default(16 * MiB),
    /** Size of each of the run's writable tmpfs, /tmp and /box. */
    diskBytes: z
      .number()
      .int()
      .positive()
      .default(64 * MiB),
    /** stdout and stderr, each; past it the run is killed (→ `output_limit_exceeded`). */
    maxOutputBytes: z
      .number()
      .int()
      .positive()
      .default(1 * MiB),
    /** Open file descriptors per process. */
    maxOpenFiles: z.number().int().min(16).default(256),
  })
  .strict();

/** Ceilings no request may go past. */
const maxLimitsSchema = z
  .object({
    /** The longest wall time a request may ask for; larger values are clamped to it. */
    wallTimeMs: z.number().int().positive().default(60_000),
    /** The most CPU time a request may ask for. */
    cpuTimeMs: z.number().int().positive().default(60_000),
    /** The most memory a request may ask for. */
    memoryBytes: z
      .number()
      .int()
      .positive()
      .default(2048 * MiB),
    /** The most cores a request may ask for. */
    cpus: z.number().positive().default(4),
  })
  .strict();

/** A backend's pool when it is not `sandbox.backend`: idle sandboxes kept per language. */
const poolOfBackend = (size: number) =>
  z
    .object({
      /** Idle sandboxes of this backend kept started for each language (0: its runs start cold). */
      size: z.number().int().min(0).max(64).default(size),
    })
    .strict()
    .default({ size });

export const sandboxConfigSchema = z
  .object({
    /**
     * The isolation backend runs use unless a request names another (see docs/security.md for what
     * each isolates). `process` isolates nothing and is for development only.
     */
    backend: z.enum(BACKEND_NAMES).default('bwrap'),
    limits: limitsSchema.default(limitsSchema.parse({})),
    /**
     * Backends to run on, in order, when `backend` (or a request's `backend`) cannot run on this host
     * (runsc missing, Docker daemon down). Empty (default): the service refuses to start instead.
     * A run that fell back says so: its `backend` is the one it really ran on, with a warning.
     */
    fallback: z.array(z.enum(BACKEND_NAMES)).default([]),
    maxLimits: maxLimitsSchema.default(maxLimitsSchema.parse({})),
    /** Host uids the sandboxes run as (one per concurrent sandbox), when Warden runs as root. */
    uidBase: z.number().int().min(1000).default(640_000),
    /** How many such uids, from uidBase on: the most sandboxes alive at once on this host. */
    uidCount: z.number().int().min(1).max(65_536).default(1024),
    /** cgroup parent (under each v1 hierarchy, or under the v2 root). */
    cgroupParent: z
      .string()
      .regex(/^[A-Za-z0-9_.-]+$/)
      .default('warden'),
    /**
     * Whether a request may ask for `network_access: true`. Off by default: such requests are refused
     * (400) unless the operator turned this on.
     */
    allowNetwork: z.boolean().default(false),
    /**
     * Wall time one request may spend in sandboxes across all its test cases; cases past it are
     * reported `skipped`, and a case is cut short to what is left.
     */
    maxRequestMs: z.number().int().positive().default(120_000),
    /** Pre-started sandboxes kept per language. 0 disables the pool. */
    pool: z
      .object({
        /** Idle sandboxes kept started for each language. */
        size: z.number().int().min(0).max(64).default(2),
        /** A different size for some languages, e.g. `{ python: 4, typescript: 0 }`. */
        perLanguage: z.record(z.string(), z.number().int().min(0).max(64)).default({}),
        /** A pre-started sandbox older than this is replaced. */
        maxIdleMs: z.number().int().positive().default(300_000),
      })
      .strict()
      .default({ size: 2, perLanguage: {}, maxIdleMs: 300_000 }),
    /**
     * Pools of the other backends, for runs whose request names one (`backend: gvisor` on a bwrap
     * service): idle sandboxes kept per language, from that backend's first run on (a backend no
     * request asks for costs nothing). `sandbox.backend`'s own pool is `pool` above.
     */
    pools: z
      .object({
        bwrap: poolOfBackend(2),
        // Containers and gVisor kernels hold ≈ 20–40 MB each: one per language by default.
        docker: poolOfBackend(1),
        gvisor: poolOfBackend(1),
        process: poolOfBackend(0),
      })
      .strict()
      .default({ bwrap: { size: 2 }, docker: { size: 1 }, gvisor: { size: 1 }, process: { size: 0 } }),
    /** The `docker` backend: Docker Engine on this host (see README, "Docker backend"). */
    docker: z
      .object({
        /** The daemon's unix socket. */
        socketPath: z.string().min(1).default('/var/run/docker.sock'),
        /** Local image the containers start from (built by `warden doctor --build-image`, never pulled). */
        image: z
          .string()
          .regex(/^[a-z0-9][a-z0-9._/-]*$/)
          .default('warden-sandbox'),
        /** OCI runtime: `runsc` gives Docker + gVisor where the daemon has it registered. */
        runtime: z.enum(['runc', 'runsc']).default('runc'),
      })
      .strict()
      .default({ socketPath: '/var/run/docker.sock', image: 'warden-sandbox', runtime: 'runc' }),
    /** The container monitor: sweeps what dead services and finished runs left behind. */
    monitor: z
      .object({ intervalMs: z.number().int().min(100).default(30_000) })
      .strict()
      .default({ intervalMs: 30_000 }),
  })
  .strict();

export type SandboxConfig = z.infer<typeof sandboxConfigSchema>;

export const analysisConfigSchema = z
  .object({
    /**
     * strict: importing a dangerous module rejects too (SPEC §4); standard: an import alone warns,
     * dangerous uses reject; off: findings are reported, nothing is rejected.
     */
    profile: z.enum(['strict', 'standard', 'off']).default('strict'),
    /** Findings at or above this severity reject the code (under strict and standard). */
    rejectAt: z.enum(['low', 'medium', 'high', 'critical']).default('high'),
    /** Longer code is refused with 400 `code_too_large` before it is parsed. */
    maxCodeChars: z.number().int().positive().default(50_000),
    /** `range(N)` / loops with a literal bound above this are flagged as DoS shapes. */
    maxLiteralRange: z.number().int().positive().default(10_000_000),
  })
  .strict();

export type AnalysisConfig = z.infer<typeof analysisConfigSchema>;

export const languagesConfigSchema = z
  .object({
    typescript: z
      .object({
        /**
         * Type-check TypeScript before running it (in memory, ES2022 and a small declaration of Node's
         * globals, not strict): a type error is `compile_error`. It runs in a child process, so the
         * event loop the API shares is not held: 6–10 ms for a small file, 0.15–0.2 s for 2,000
         * lines, 1–1.5 s and ≈ 100 MB for a process's first (README, "Compile errors"). On by
         * default: a type error is a compilation error, as `tsc` makes it in Judge0 and Piston.
         */
        typecheck: z.boolean().default(true),
      })
      .strict()
      .default({ typecheck: true }),
  })
  .strict();

export type LanguagesConfig = z.infer<typeof languagesConfigSchema>;

export const serverConfigSchema = z
  .object({
    /**
     * Address to listen on. Beyond loopback (e.g. `0.0.0.0`) API keys are required (auth.mode keys).
     */
    host: z.string().min(1).default('127.0.0.1'),
    /** 0 picks a free port (tests, benchmarks). */
    port: z.number().int().min(0).max(65_535).default(8080),
    /** Larger request bodies are refused with 413 before they are parsed. */
    bodyLimitBytes: z
      .number()
      .int()
      .min(1024)
      .default(1 * MiB),
    /**
     * Places in each queue (executions, jobs, task uploads, tasks): work waiting for a worker. Past
     * this, 429 queue_full with Retry-After; one tenant holds at most quotas.queuedShare of them.
     */
    maxQueueDepth: z.number().int().min(0).default(100),
    /**
     * Size of one execution's answer as JSON (what is sent and stored): past it, outputs are cut and
     * flagged `truncated`. Each test case gets an equal share.
     */
    maxResponseBytes: z
      .number()
      .int()
      .min(64 * 1024)
      .default(16 * MiB),
    /** Test cases one POST /execute may carry; more is a 400. */
    maxTestCases: z.number().int().min(1).max(10_000).default(50),
    /**
     * How long a synchronous POST /execute waits for its result; past it the answer is 202 with the
     * request_id to poll at GET /executions/{request_id} (the run goes on).
     */
    requestTimeoutMs: z.number().int().positive().default(60_000),
    /** Retry-After (seconds) sent with 429 and 503. */
    retryAfterSeconds: z.number().int().positive().default(5),
    /** pino's level for the JSON log on stdout. */
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    /** Browser origins allowed to call the API (CORS); none by default. */
    cors: corsConfigSchema.default({ origins: [] }),
  })
  .strict();

export type ServerConfig = z.infer<typeof serverConfigSchema>;

export const storeConfigSchema = z
  .object({
    /**
     * `postgres://…` (or `postgresql://…`) for PostgreSQL, `sqlite:<path>` for a SQLite file.
     * Unset: SQLite at `<dataDir>/warden.sqlite`.
     */
    databaseUrl: z
      .string()
      .regex(/^(postgres|postgresql|sqlite):/, 'must start with postgres://, postgresql:// or sqlite:')
      .optional(),
    /**
     * How long executions and task runs (and their outputs) are kept: milliseconds, or a duration
     * such as `7d`, `12h`, `30m`, `90s`. A periodic sweep deletes older ones.
     */
    retention: duration.prefault('7d'),
    /**
     * How long audit log rows are kept (same forms as retention); longer by default than the work
     * they describe, since the log is what answers "who did what" afterwards.
     */
    auditRetention: duration.prefault('365d'),
    /**
     * How long an audit event may wait to be written together with others (ms). Writes are batched
     * so that no request waits for the audit log; a clean shutdown writes whatever is waiting.
     */
    auditFlushMs: z.number().int().min(10).max(60_000).default(200),
  })
  .strict();

export type StoreConfig = z.infer<typeof storeConfigSchema>;

export const queueConfigSchema = z
  .object({
    /**
     * `redis://host:port/db`, or `unix:///path/to/redis.sock` for a socket. Unset: `warden serve`
     * starts a local redis-server of its own.
     */
    redisUrl: z
      .string()
      .regex(/^(rediss?:\/\/|unix:\/\/\/)/, 'must start with redis://, rediss:// or unix:///')
      .optional(),
    /** The binary `warden serve` starts when redisUrl is unset. */
    redisServer: z.string().min(1).default('/usr/bin/redis-server'),
    /** Key prefix in Redis, so several Warden installations can share one server. */
    prefix: z
      .string()
      .regex(/^[A-Za-z0-9_.:-]+$/)
      .default('warden'),
  })
  .strict();

export type QueueConfig = z.infer<typeof queueConfigSchema>;

export const workersConfigSchema = z
  .object({
    /**
     * Executions one worker process runs at once (a request's test cases run one after the other).
     * Default: the number of CPU cores, since sandboxed runs are mostly CPU-bound.
     */
    concurrency: z.number().int().min(1).max(256).default(availableParallelism()),
    /** false: `warden serve` only answers HTTP; separate `warden worker` processes run the queue. */
    inProcess: z.boolean().default(true),
    /** How often a worker process refreshes its heartbeat in Redis; it counts as gone after 3 missed beats. */
    heartbeatIntervalMs: z.number().int().min(100).default(5_000),
  })
  .strict();

export type WorkersConfig = z.infer<typeof workersConfigSchema>;

/** Task files (SPEC §6): where uploads wait, where they end up, and the queues between. */
export const tasksConfigSchema = z
  .object({
    /**
     * Uploads wait here for their validation (UPLOAD_STAGING_DIR). Default `<dataDir>/uploads`.
     * Staging, tasks and quarantine dirs should share a filesystem: moves between them are then renames.
     */
    stagingDir: z.string().min(1).optional(),
    /** Validated task files, the only ones tasks run (TASKS_DIR). Default `<dataDir>/tasks`. */
    dir: z.string().min(1).optional(),
    /** Rejected uploads with their reasons (QUARANTINE_DIR). Default `<dataDir>/quarantine`. */
    quarantineDir: z.string().min(1).optional(),
    /** BullMQ queue of uploads waiting for validation (TASK_VALIDATION_QUEUE_NAME). */
    validationQueue: z
      .string()
      .regex(/^[A-Za-z0-9_.-]+$/)
      .default('warden-task-validation'),
    /** BullMQ queue of tasks waiting for a task worker (TASK_QUEUE_NAME). */
    taskQueue: z
      .string()
      .regex(/^[A-Za-z0-9_.-]+$/)
      .default('warden-tasks'),
    /** Larger uploads are refused with 413 before they reach the disk. */
    maxUploadBytes: z
      .number()
      .int()
      .min(1024)
      .max(16 * MiB)
      .default(256 * 1024),
    /**
     * How many times a validation, a task or an execution is tried when Warden itself fails (a
     * sandbox error, a worker killed mid-run) before it is closed with the reason.
     */
    maxAttempts: z.number().int().min(1).max(20).default(3),
    /**
     * A job whose worker stops renewing its lock for this long (the worker died) is handed to another
     * worker. Lower recovers faster; too low hands a busy worker's job to a second one.
     */
    jobLockMs: z.number().int().min(500).default(15_000),
    /**
     * How often each worker looks for work without a live job (a Redis killed may lose its last second
     * of writes; an external one may lose everything) and queues it again.
     */
    recoveryIntervalMs: z.number().int().min(100).default(30_000),
  })
  .strict();

export type TasksConfig = z.infer<typeof tasksConfigSchema>;

const configObject = z
  .object({
    /** Where a single node keeps its state: SQLite, the local Redis, uploads, tasks, artifacts. */
    dataDir: z.string().default('.warden'),
    server: serverConfigSchema.default(serverConfigSchema.parse({})),
    store: storeConfigSchema.default(storeConfigSchema.parse({})),
    queue: queueConfigSchema.default(queueConfigSchema.parse({})),
    workers: workersConfigSchema.default(workersConfigSchema.parse({})),
    sandbox: sandboxConfigSchema.default(sandboxConfigSchema.parse({})),
    analysis: analysisConfigSchema.default(analysisConfigSchema.parse({})),
    languages: languagesConfigSchema.default(languagesConfigSchema.parse({})),
    tasks: tasksConfigSchema.default(tasksConfigSchema.parse({})),
    artifacts: artifactsConfigSchema.default({}),
    jobs: jobsConfigSchema.default(jobsConfigSchema.parse({})),
    webhooks: webhooksConfigSchema.default(webhooksConfigSchema.parse({})),
    auth: authConfigSchema.default({ publicMetrics: true }),
    piston: pistonConfigSchema.default({ analysis: true }),
    quotas: quotasConfigSchema.default(quotasConfigSchema.parse({})),
  })
  .strict()
  .refine((c) => c.auth.mode !== 'none' || isLoopbackHost(c.server.host), {
    path: ['auth', 'mode'],
    message:
      'none is allowed only when server.host is a loopback address (127.0.0.1, ::1, localhost); create an API key with `warden keys create --tenant NAME` and use auth.mode keys',
  });

/** The task-file dirs default to places under the data dir, so every dir is known after parsing. */
export const configSchema = configObject.transform((config) => ({
  ...config,
  tasks: {
    ...config.tasks,
    stagingDir: config.tasks.stagingDir ?? join(config.dataDir, 'uploads'),
    dir: config.tasks.dir ?? join(config.dataDir, 'tasks'),
    quarantineDir: config.tasks.quarantineDir ?? join(config.dataDir, 'quarantine'),
  },
  artifacts: { ...config.artifacts, dir: config.artifacts.dir ?? join(config.dataDir, 'artifacts') },
  jobs: withinSandbox(config.jobs, config.sandbox.maxLimits),
  auth: { ...config.auth, mode: resolveAuthMode(config.auth.mode, config.server.host) },
}));

export type WardenConfig = z.output<typeof configSchema>;
