import type { ChildProcess } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';

/**
 * The sandbox engine's contract (SPEC §2). This layer knows nothing of HTTP, queues, stores or
 * languages: it runs a spec and returns a RunResult.
 */

export const VERDICTS = [
  'success',
  'failed',
  'timeout',
  'memory_limit_exceeded',
  'output_limit_exceeded',
  // The code does not parse, transpile or type-check: found before any run, or by the runtime loading it.
  'compile_error',
  'security_violation',
  'error',
] as const;
export type Verdict = (typeof VERDICTS)[number];

export const BACKEND_NAMES = ['bwrap', 'gvisor', 'docker', 'process'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

/** How strongly a run was isolated; `none` means the code ran as a plain host process. */
export type Isolation = 'namespaces' | 'gvisor' | 'container' | 'none';

export interface Limits {
  /** Wall-clock time from the moment the run begins (not from sandbox start-up). */
  wallTimeMs: number;
  /** CPU time of all processes of the run together. */
  cpuTimeMs: number;
  /** Memory of all processes together (RSS + page cache + tmpfs), enforced by the kernel. */
  memoryBytes: number;
  /** CPU bandwidth in cores (0.5 = half a core). */
  cpus: number;
  /** Processes and threads alive at once. */
  maxProcesses: number;
  /** Largest single file the run may write. */
  maxFileSizeBytes: number;
  /** Size of each writable area (/tmp and the working dir). */
  diskBytes: number;
  /** stdout and stderr are each cut at this many bytes; going past it is `output_limit_exceeded`. */
  maxOutputBytes: number;
  /** Open file descriptors per process. */
  maxOpenFiles: number;
}

export interface NetworkPolicy {
  /** false (default): no network at all, not even the host's loopback. */
  enabled: boolean;
  /**
   * With `enabled: false`: the run's own network namespace (a loopback interface, nothing else) with
   * internet sockets allowed in it, for a bridge to a proxy on a bound unix socket (jobs' egress).
   */
  loopback?: boolean;
}

/** A host path bound read-only at another place inside the sandbox. */
export interface Bind {
  source: string;
  /** Absolute path inside the sandbox. */
  dest: string;
}

export interface SandboxFile {
  /** Relative to the working dir; no `..`, no absolute paths. */
  path: string;
  content: string | Uint8Array;
  executable?: boolean;
}

export interface SandboxSpec {
  /** argv[0] is an absolute path inside the sandbox (the runtime is bound read-only). */
  argv: string[];
  /** Written into the working dir before argv starts. */
  files?: SandboxFile[];
  /** Variables the run sees; nothing of the service's own environment is ever passed. */
  env?: Record<string, string>;
  limits?: Partial<Limits>;
  network?: NetworkPolicy;
  /** Working dir inside the sandbox; a private, size-capped, writable directory. Default `/box`. */
  workdir?: string;
  /**
   * Host paths the runtime needs besides the defaults (/usr and friends), bound read-only at the
   * same place inside the sandbox.
   */
  readOnlyPaths?: string[];
  /** Name the pool reports this spec's idle sandboxes under (e.g. the language). */
  label?: string;
  /**
   * Host directory bound writable at /out, for outputs the caller reads after the run (jobs). The
   * caller creates it, caps its size (a tmpfs of its own) and reads it without following links; the
   * backend hands it to the run's host uid. Never pooled.
   */
  outputDir?: string;
  /**
   * Host directories bound read-only at `dest`; the backend hands each to the run's host uid (as
   * with outputDir), so only the run and root can reach what they hold (the egress proxy's socket).
   */
  binds?: Bind[];
}

/** What a sandbox is given when its run begins. */
export interface RunInput {
  stdin?: string | Uint8Array;
  /**
   * Delivered on file descriptor 3, then closed. A pre-started runtime (see the pool) blocks on fd 3
   * until the run begins, so the code it runs arrives here.
   */
  payload?: string | Uint8Array;
  /** Aborting it kills the run at once (a cancelled job); the result is what the run had by then. */
  signal?: AbortSignal;
  /** Each chunk of output as it arrives (live logs); the result still carries the capped whole. */
  onOutput?: (stream: 'stdout' | 'stderr', chunk: Buffer) => void;
}

/** RunInput's fields: what a run brings to a sandbox, never part of what a pooled one must match. */
export const RUN_INPUT_FIELDS = [
  'stdin',
  'payload',
  'signal',
  'onOutput',
] as const satisfies readonly (keyof RunInput)[];

export type RunSpec = SandboxSpec & RunInput;

export interface Violation {
  /** e.g. `forbidden_syscall`. */
  rule: string;
  message: string;
  /** Name of the system call, where the kernel told us. */
  syscall?: string;
}

export interface Usage {
  wallMs: number;
  cpuMs: number;
  peakMemoryBytes: number;
}

export interface RunResult {
  status: Verdict;
  exitCode: number | null;
  /** e.g. `SIGKILL` when the process was ended by a signal. */
  signal: string | null;
  stdout: string;
  stderr: string;
  truncated: { stdout: boolean; stderr: boolean };
  usage: Usage;
  violations: Violation[];
  backend: BackendName;
  isolation: Isolation;
  /** Whether the run came from a pre-started sandbox of the pool. */
  pooled: boolean;
  /** Degraded guarantees on this host (e.g. no cgroups: rlimits only) and other notes. */
  warnings: string[];
  /** Set with status `error`: what went wrong in Warden (never the user's fault). */
  error?: string;
  /** Set with status `timeout`: the limit that ended the run (wall-clock or CPU time). */
  timeLimit?: 'wall' | 'cpu';
}

export type DecodedExit =
  | { kind: 'exited'; exitCode: number | null; signal: string | null }
  | { kind: 'setup_failed'; error: string };

/**
 * What the supervisor drives of a sandbox's process: a ChildProcess, or an adapter of the same shape
 * (a container's attached stdio). stdio is [stdin, stdout, stderr, payload (fd 3)].
 */
export type SandboxProcess = Pick<ChildProcess, 'stdin' | 'stdout' | 'stderr' | 'exitCode' | 'signalCode'> & {
  readonly stdio: readonly (Writable | Readable | null | undefined)[];
  once(event: 'exit', listener: (code: number | null, signal: NodeJS.Signals | null) => void): unknown;
};

/**
 * A started sandbox and everything it holds (uid lease, cgroup, temp dir, processes). It serves one
 * run at most; whoever took it releases it, whatever happened.
 */
export interface Sandbox {
  readonly backend: BackendName;
  readonly isolation: Isolation;
  readonly warnings: string[];
  /** The sandbox's process; stdio is [stdin, stdout, stderr, payload (fd 3)]. */
  readonly child: SandboxProcess;
  /** Resolves when the process ended (for a pre-started sandbox: it died before use). */
  readonly exited: Promise<void>;
  /** Sets the run's limits that this backend can still change after start (Backend.adjustableLimits). */
  setLimits(limits: Limits): void;
  /** Cumulative CPU ms of the sandbox's processes (cgroup, or sampled from /proc). */
  cpuMs(): number;
  peakMemoryBytes(): number;
  oomKilled(): boolean;
  /** Kill every process of the run now (timeout, output flood). */
  killTree(): void;
  /** Map how the process ended to the user program's exit code / signal, or a setup failure. */
  decodeExit(code: number | null, signal: NodeJS.Signals | null): DecodedExit;
  /** Forbidden system calls any process of the run was killed for. */
  violations(decoded: DecodedExit): Promise<Violation[]>;
  /** Kill everything and give back all the sandbox holds. Idempotent. */
  release(): Promise<void>;
}

/** Steps of a run's life where a test injects a failure (EngineOptions.fault; never set in service). */
export type FaultStep = 'uid' | 'cgroup' | 'tempdir' | 'spawned' | 'acquired' | 'limited' | 'ran';
export type FaultHook = (step: FaultStep) => void;

export interface BackendProbe {
  backend: BackendName;
  available: boolean;
  isolation: Isolation;
  detail: string;
  warnings: string[];
}

/** One isolation backend: an adapter behind this interface, nothing more. */
export interface Backend {
  readonly name: BackendName;
  readonly isolation: Isolation;
  /**
   * Limits a started sandbox can still take when its run begins, in the mode this backend runs in
   * here (with cgroups or rlimits only): a pre-started sandbox serves a run only if all others match.
   */
  readonly adjustableLimits: readonly (keyof Limits)[];
  probe(): Promise<BackendProbe>;
  /**
   * Starts a sandbox with `limits` in force from its first instruction. On failure everything taken
   * so far is released before the error is thrown.
   */
  start(spec: SandboxSpec, limits: Limits): Promise<Sandbox>;
  /** Remove what a crashed predecessor left behind (cgroups, containers, temp dirs). */
  cleanupOrphans(): Promise<string[]>;
  /** Stop what the backend keeps running between runs (engine shutdown). */
  close?(): Promise<void>;
}
