import type { JobsConfig } from '../config/jobs.js';
import type { Engine } from '../sandbox/engine.js';
import type { Limits, RunResult, SandboxSpec } from '../sandbox/types.js';
import type { FinalJobState } from '../store/jobs.js';
import { collectOutputs, type ArtifactSink, type Collected, type Skipped } from './collect.js';
import { createOutputDir } from './outdir.js';
import { JOB_WORKDIR, type JobFile, type JobSpec } from './spec.js';

/**
 * One job from sandbox to artifacts, shared by the job worker and `warden job run`: a fresh output
 * dir, the run on the engine (files in /box, /out bound writable, no network unless proxied), then
 * the collection of /out into the sink, and the output dir gone on every path.
 */

export interface JobExecution {
  result: RunResult;
  artifacts: Collected[];
  skipped: Skipped[];
}

export interface ExecuteOptions {
  config: JobsConfig;
  /** Host dir the output dirs are made in (outputBase()). */
  outputBase: string;
  sink: ArtifactSink;
  /** Names the sink cannot store are listed as skipped instead. */
  acceptsName?: (path: string) => boolean;
  onOutput?: (stream: 'stdout' | 'stderr', chunk: Buffer) => void;
  signal?: AbortSignal;
  /** Called just before the command starts, and just before collection. */
  onStep?: (step: 'running' | 'collecting') => Promise<void>;
  onCleanupError?: (err: Error) => void;
  /** A job with outbound network: its egress proxy's bridge (src/jobs/proxy.ts). */
  network?: {
    env: Record<string, string>;
    wrapArgv(argv: readonly string[]): string[];
    sandbox: Pick<SandboxSpec, 'network' | 'binds'>;
  };
}

export function sandboxLimits(spec: JobSpec, config: JobsConfig): Partial<Limits> {
  const { timeoutMs, cpus, memoryBytes, diskBytes } = spec.limits;
  return {
    wallTimeMs: timeoutMs,
    // The bandwidth cap already bounds CPU time to timeout × cores; this only backs it up.
    cpuTimeMs: Math.ceil(timeoutMs * Math.max(1, cpus)),
    cpus,
    memoryBytes,
    diskBytes,
    maxFileSizeBytes: diskBytes,
    maxOutputBytes: config.maxLogBytes,
  };
}

export async function executeJob(
  engine: Engine,
  job: { id: string; spec: JobSpec; files: JobFile[] },
  options: ExecuteOptions,
): Promise<JobExecution> {
  const { spec } = job;
  const out = await createOutputDir(options.outputBase, job.id, spec.limits.diskBytes);
  try {
    await options.onStep?.('running');
    const result = await engine.run({
      argv: options.network ? options.network.wrapArgv(spec.argv) : spec.argv,
      env: { ...spec.env, ...options.network?.env },
      files: job.files.map((f) => ({
        path: f.path,
        content: Buffer.from(f.content, 'base64'),
        executable: f.executable,
      })),
      limits: sandboxLimits(spec, options.config),
      workdir: JOB_WORKDIR,
      outputDir: out.path,
      ...options.network?.sandbox,
      label: 'job',
      signal: options.signal,
      onOutput: options.onOutput,
    });
    if (result.status === 'error') return { result, artifacts: [], skipped: [] };
    await options.onStep?.('collecting');
    const { maxFiles, maxFileBytes, maxTotalBytes } = options.config.artifacts;
    const collected = await collectOutputs(
      out.path,
      { maxFiles, maxFileBytes, maxTotalBytes, acceptsName: options.acceptsName },
      options.sink,
    );
    return { result, ...collected };
  } finally {
    // Off the job's critical path; a failure leaves a dir the next start removes (an orphan).
    void out.remove().catch((err: Error) => options.onCleanupError?.(err));
  }
}

/** The job's final state and, when it did not complete, why, in words a user understands. */
export function jobOutcome(
  result: RunResult,
  cancelled: boolean,
  spec: JobSpec,
): { status: FinalJobState; error: string | null } {
  if (cancelled) return { status: 'cancelled', error: 'cancelled by request' };
  switch (result.status) {
    case 'success':
      return { status: 'completed', error: null };
    case 'failed':
      return {
        status: 'failed',
        error:
          result.exitCode !== null
            ? `the command exited with status ${result.exitCode}`
            : `the command was killed by ${result.signal ?? 'a signal'}`,
      };
    case 'timeout':
      // Stopped well before its wall-clock limit: it used up the CPU time the ceilings allow.
      return {
        status: 'timeout',
        error:
          result.usage.wallMs < spec.limits.timeoutMs - 1000
            ? `the job used up its CPU time (${(result.usage.cpuMs / 1000).toFixed(1)} s)`
            : `the job ran past its time limit of ${spec.limits.timeoutMs / 1000} s`,
      };
    case 'memory_limit_exceeded':
      return {
        status: 'failed',
        error: `the job used more than its memory limit of ${spec.limits.memoryBytes} bytes and was killed`,
      };
    case 'output_limit_exceeded':
      return { status: 'failed', error: 'the job printed more than the log limit and was stopped' };
    case 'security_violation':
      return {
        status: 'failed',
        error: result.violations.map((v) => v.message).join('; ') || 'a forbidden action stopped the job',
      };
    // Decided on source before any sandbox; a job runs a command, so its run never ends this way.
    case 'compile_error':
    case 'error':
      return { status: 'error', error: `Warden could not run the job: ${result.error ?? 'sandbox error'}` };
  }
}
