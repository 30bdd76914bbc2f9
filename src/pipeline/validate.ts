import { analyze, CodeTooLargeError, type AnalysisPolicy, type Finding } from '../analysis/index.js';
import { CompileError, type Language } from '../languages/index.js';
import { buildHarnessRun, readVerdict, type HarnessProbe } from '../languages/harness/index.js';
import type { Engine } from '../sandbox/engine.js';
import type { BackendName, Limits, Usage, Violation } from '../sandbox/types.js';
import { callReason, crashReason, findingReason, forgeryAttempt, problemReason } from './reasons.js';

/**
 * Validation of an uploaded task file (SPEC §6): static analysis, then one sandboxed run of the
 * harness that imports the file, checks `handler` and calls it with probe payloads.
 *
 * Policy:
 * - Rejected on any static finding the analysis profile rejects, and on a syntax error under any
 *   policy (reason "syntax error (line N)"); such code never reaches a sandbox.
 * - Rejected when the file does not import, has no `handler`, or `handler` is not an async function
 *   callable with one argument.
 * - The user's sample payloads are contracts: each must return a JSON-serialisable value.
 * - The default probes are guesses: a handler that raises on them (typically a KeyError for a field
 *   the probe lacks) only earns a warning. Returning a non-JSON value, running out of memory or trying
 *   to end the process rejects whatever the payload, because no payload makes those right.
 * - Anything that ends the process abnormally (timeout, memory limit, output flood, forbidden system
 *   call, no verdict) rejects, as does a task printing Warden's verdict marker.
 * - A sandbox failure (`error`, Warden's own fault) throws SandboxFailureError so the caller retries
 *   instead of rejecting the user's file.
 */

export type ValidationStatus = 'VALIDATED' | 'REJECTED';

const MiB = 1024 * 1024;

/** Strict: validation runs untrusted code nobody has seen behave yet, once per upload. */
export const VALIDATION_LIMITS: Readonly<Partial<Limits>> = Object.freeze({
  wallTimeMs: 5_000,
  cpuTimeMs: 2_000,
  memoryBytes: 128 * MiB,
  maxProcesses: 32,
  maxOutputBytes: 64 * 1024,
});

/** Tried on every handler; only their shape-level failures count (see the policy above). */
export const DEFAULT_PROBES: readonly unknown[] = Object.freeze([
  {},
  { probe: true, n: 1, items: [1, 2, 3], text: 'warden' },
]);

export const MAX_SAMPLE_PAYLOADS = 20;
export const MAX_SAMPLE_BYTES = 256 * 1024;
/** How much of the task's own output (its prints, on stderr) an outcome keeps. */
export const LOG_TAIL_CHARS = 4096;

export interface TaskDeps {
  engine: Engine;
  policy: Partial<AnalysisPolicy>;
  backend?: BackendName;
}

export interface ValidationInput {
  code: string;
  language: Language;
  samplePayloads?: unknown[];
  limits?: Partial<Limits>;
}

export interface ProbeReport {
  /** `sample` payloads came with the upload; `probe` payloads are Warden's defaults. */
  source: 'sample' | 'probe';
  /** 1-based within its source. */
  number: number;
  ok: boolean;
  /** The result's JSON, cut at 200 characters. */
  preview?: string;
  error?: string;
}

export interface ValidationOutcome {
  status: ValidationStatus;
  /** Why it was rejected; empty when validated. */
  reasons: string[];
  /** Worth telling the user, not worth rejecting for (e.g. the handler raised on a default probe). */
  warnings: string[];
  findings: Finding[];
  /** Absent when the file never reached a sandbox. */
  usage?: Usage;
  violations: Violation[];
  probes: ProbeReport[];
  /** The end of what the task printed during validation. */
  logs: string;
  durationMs: number;
}

export function tail(text: string, chars = LOG_TAIL_CHARS): string {
  return text.length <= chars ? text : `…${text.slice(-(chars - 1))}`;
}

function samplePayloadProblem(samples: unknown[]): string | null {
  if (samples.length > MAX_SAMPLE_PAYLOADS) {
    return `too many sample payloads: ${samples.length} (at most ${MAX_SAMPLE_PAYLOADS})`;
  }
  let text: string;
  try {
    text = JSON.stringify(samples);
  } catch (err) {
    return `sample payloads are not JSON: ${(err as Error).message}`;
  }
  if (Buffer.byteLength(text) > MAX_SAMPLE_BYTES) {
    return `sample payloads are too large: ${Buffer.byteLength(text)} bytes (at most ${MAX_SAMPLE_BYTES})`;
  }
  return null;
}

export async function validateTaskFile(deps: TaskDeps, input: ValidationInput): Promise<ValidationOutcome> {
  const started = performance.now();
  const samples = input.samplePayloads ?? [];
  const outcome: ValidationOutcome = {
    status: 'REJECTED',
    reasons: [],
    warnings: [],
    findings: [],
    violations: [],
    probes: [],
    logs: '',
    durationMs: 0,
  };
  const finish = (): ValidationOutcome => {
    outcome.status = outcome.reasons.length === 0 ? 'VALIDATED' : 'REJECTED';
    outcome.durationMs = Math.round(performance.now() - started);
    return outcome;
  };

  const sampleProblem = samplePayloadProblem(samples);
  if (sampleProblem) {
    outcome.reasons.push(sampleProblem);
    return finish();
  }

  try {
    const report = await analyze(input.code, input.language.analysis, deps.policy);
    outcome.findings = report.findings;
    // A syntax error rejects under every policy: code that does not parse cannot be imported.
    const blocking = report.findings.filter((f) => f.rule === 'syntax_error' || report.rejected.includes(f));
    outcome.reasons.push(...blocking.map(findingReason));
  } catch (err) {
    if (!(err instanceof CodeTooLargeError)) throw err;
    outcome.reasons.push(`the task file is too large: ${err.message}`);
  }
  if (outcome.reasons.length > 0) return finish();

  // Samples first: they are the user's real cases, and a fatal failure stops the probing.
  const payloads = [...samples, ...DEFAULT_PROBES];
  const label = (index: number) =>
    index < samples.length ? `sample payload #${index + 1}` : `probe payload #${index - samples.length + 1}`;
  const limits = { ...VALIDATION_LIMITS, ...input.limits };

  let built;
  try {
    built = await buildHarnessRun(input.language, input.code, { mode: 'validate', payloads, limits });
  } catch (err) {
    if (!(err instanceof CompileError)) throw err;
    outcome.reasons.push(`the TypeScript does not compile: ${err.message}`);
    return finish();
  }
  const result = await deps.engine.run(built.spec, { backend: deps.backend });
  outcome.usage = result.usage;
  outcome.violations = result.violations;
  outcome.logs = tail(result.stderr);

  const forged = forgeryAttempt(result.stderr);
  if (forged) outcome.reasons.push(forged);
  const crash = crashReason(result, limits);
  if (crash) {
    outcome.reasons.push(crash);
    return finish();
  }
  const reading = readVerdict(result.stdout, built.nonce);
  if (reading.kind === 'missing') {
    outcome.reasons.push('the task file ended the process before validation finished');
    return finish();
  }
  if (reading.kind === 'tampered') {
    outcome.reasons.push(`the validation result was tampered with: ${reading.detail}`);
    return finish();
  }
  const verdict = reading.verdict;
  if (verdict.problem) {
    outcome.warnings.push(...(verdict.notes ?? []));
    const { problem } = verdict;
    outcome.reasons.push(
      problem.index === undefined
        ? problemReason(problem, input.language)
        : callReason(problem, label(problem.index)),
    );
    return finish();
  }
  outcome.probes = verdict.results.map((r) => probeReport(r, samples.length));
  for (const r of verdict.results) {
    if (r.ok || !r.error) continue;
    const reason = callReason(r.error, label(r.index));
    const isSample = r.index < samples.length;
    if (isSample || r.error.kind !== 'raised') {
      outcome.reasons.push(reason);
    } else {
      outcome.warnings.push(
        `${reason} (default probes only show the handler runs; send sample_payloads to check real ones)`,
      );
    }
  }
  outcome.warnings.push(...(verdict.notes ?? []));
  for (const b of verdict.background ?? []) {
    outcome.warnings.push(
      `an error escaped the handler in the background${b.line ? ` (line ${b.line})` : ''}: ${b.message}`,
    );
  }
  if (verdict.results.length < payloads.length && outcome.reasons.length === 0) {
    outcome.reasons.push('validation stopped before every payload was tried');
  }
  return finish();
}

function probeReport(r: HarnessProbe, samples: number): ProbeReport {
  const isSample = r.index < samples;
  const report: ProbeReport = {
    source: isSample ? 'sample' : 'probe',
    number: isSample ? r.index + 1 : r.index - samples + 1,
    ok: r.ok,
  };
  if (r.preview !== undefined) report.preview = r.preview;
  if (r.error) report.error = r.error.message;
  return report;
}
