import { CompileError, type Language } from '../languages/index.js';
import { buildHarnessRun, readVerdict } from '../languages/harness/index.js';
import type { Limits, Usage, Verdict } from '../sandbox/types.js';
import { callReason, crashReason, forgeryAttempt, problemReason } from './reasons.js';
import { tail, type TaskDeps } from './validate.js';

/**
 * One task (SPEC §6 `POST /tasks`): the validated file's handler called once with the task's payload,
 * in a fresh sandbox, through the same harness as validation. Static analysis is not repeated: a file
 * only reaches the tasks dir by passing it, and the sandbox is the boundary either way.
 */

export interface TaskRunInput {
  code: string;
  language: Language;
  payload: unknown;
  /** Default: the engine's configured limits. */
  limits?: Partial<Limits>;
}

export interface TaskRunOutcome {
  status: 'succeeded' | 'failed';
  /** The handler's return value (JSON data); set when succeeded. */
  result?: unknown;
  /** What went wrong, for the user; set when failed. */
  error?: string;
  usage: Usage;
  /** The sandbox's verdict of the run (`success` even when the handler raised: the harness caught it). */
  verdict: Verdict;
  /** The end of what the handler printed. */
  logs: string;
  durationMs: number;
}

/** Throws SandboxFailureError when the sandbox itself failed (the caller retries). */
export async function runTask(
  deps: Pick<TaskDeps, 'engine' | 'backend'>,
  input: TaskRunInput,
): Promise<TaskRunOutcome> {
  const started = performance.now();
  const failed = (error: string, usage: Usage, verdict: Verdict, logs = ''): TaskRunOutcome => ({
    status: 'failed',
    error,
    usage,
    verdict,
    logs,
    durationMs: Math.round(performance.now() - started),
  });
  const noUsage: Usage = { wallMs: 0, cpuMs: 0, peakMemoryBytes: 0 };

  let payloadJson: string | undefined;
  try {
    payloadJson = JSON.stringify(input.payload);
  } catch (err) {
    return failed(`the payload is not JSON: ${(err as Error).message}`, noUsage, 'failed');
  }
  if (payloadJson === undefined) return failed('the payload is not JSON: undefined', noUsage, 'failed');

  const limits = input.limits ?? {};
  let built;
  try {
    built = await buildHarnessRun(input.language, input.code, {
      mode: 'run',
      payloads: [input.payload],
      limits,
    });
  } catch (err) {
    if (!(err instanceof CompileError)) throw err;
    return failed(`the TypeScript does not compile: ${err.message}`, noUsage, 'failed');
  }
  const result = await deps.engine.run(built.spec, { backend: deps.backend });
  const logs = tail(result.stderr);
  const crash = crashReason(result, limits);
  if (crash) return failed(crash, result.usage, result.status, logs);
  const forged = forgeryAttempt(result.stderr);
  if (forged) return failed(forged, result.usage, result.status, logs);
  const reading = readVerdict(result.stdout, built.nonce);
  if (reading.kind === 'missing')
    return failed('the task ended the process before returning', result.usage, result.status, logs);
  if (reading.kind === 'tampered') {
    return failed(
      `the task's result was tampered with: ${reading.detail}`,
      result.usage,
      result.status,
      logs,
    );
  }
  const verdict = reading.verdict;
  if (verdict.problem)
    return failed(problemReason(verdict.problem, input.language), result.usage, result.status, logs);
  if (!verdict.ok || !verdict.hasResult) {
    const error = verdict.error ? callReason(verdict.error, 'the payload') : 'the handler returned no result';
    return failed(error, result.usage, result.status, logs);
  }
  return {
    status: 'succeeded',
    result: verdict.result,
    usage: result.usage,
    verdict: result.status,
    logs,
    durationMs: Math.round(performance.now() - started),
  };
}
