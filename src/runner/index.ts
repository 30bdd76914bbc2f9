import { analyze, CodeTooLargeError, type AnalysisPolicy, type AnalysisReport } from '../analysis/index.js';
import {
  buildRun,
  CompileError,
  compileSource,
  formatDiagnostic,
  LANGUAGES,
  type Diagnostic,
  type Language,
  type LanguageId,
} from '../languages/index.js';
import { loadError } from '../languages/load-error.js';
import { resultWithoutRun, type Engine } from '../sandbox/engine.js';
import type { BackendName, Limits, RunResult, Verdict, Violation } from '../sandbox/types.js';
import type {
  ExecutionRequest,
  ExecutionResponse,
  ProcessDetail,
  RequestLimits,
  SecurityViolation,
  TestCase,
  TestResult,
} from './contract.js';
import { extraFiles, withExtraFiles } from './files.js';
import { fitPair, jsonBytes } from './json-budget.js';

export type * from './contract.js';

/**
 * One submission's way through Warden: static analysis first (rejected code never reaches a
 * sandbox), then one sandboxed run, or one run per test case, folded into the answer the API gives.
 * Shapes are the API's (snake_case) so a stored response is exactly what the client got.
 *
 * A request with test cases is taken apart for the queue: `analyzeExecution` once, `runCase` per case
 * (on any worker, in any order, each cut to the request's remaining time and to its share of the
 * answer's size), and `assembleResponse` when the last case is in.
 */

export interface RunnerDeps {
  engine: Engine;
  policy: Partial<AnalysisPolicy>;
  /** Type-check TypeScript before running it (`languages.typescript.typecheck`); off when absent. */
  typecheck?: boolean;
}

/** The rule of the analyser's finding for code that does not parse: a compile error, not an attack. */
const SYNTAX_RULE = 'syntax_error';

function syntaxProblems(report: AnalysisReport | null): Diagnostic[] {
  return (report?.findings ?? [])
    .filter((f) => f.rule === SYNTAX_RULE)
    .map((f) => ({ line: f.line, column: f.column, message: f.message }));
}

/**
 * Why `code` does not compile, or [] when it does: the analyser's syntax error, else esbuild's
 * transpile errors, else (with `typecheck`) TypeScript's type errors. Rejected code never gets here.
 */
async function compileProblems(
  lang: Language,
  code: string,
  report: AnalysisReport | null,
  typecheck: boolean,
): Promise<Diagnostic[]> {
  const syntax = syntaxProblems(report);
  if (syntax.length > 0) return syntax;
  try {
    await compileSource(lang, code);
  } catch (err) {
    if (err instanceof CompileError) return err.diagnostics;
    throw err;
  }
  if (!typecheck || lang.id !== 'typescript') return [];
  // In its own process, started by the first TypeScript check: the compiler is large, and a check
  // (≈ 0.1 s for 2,000 lines, ≈ 1 s cold) must not hold the event loop the HTTP API shares.
  const { typeCheckApart } = await import('../languages/typecheck-worker.js');
  return typeCheckApart(code);
}

/** Findings that rejected the code for its security, the syntax error aside (see compileProblems). */
function securityRejections(report: AnalysisReport | null): AnalysisReport['rejected'] {
  return (report?.rejected ?? []).filter((f) => f.rule !== SYNTAX_RULE);
}

const compileNotes = (problems: Diagnostic[]) =>
  problems.map((d) => `does not compile: ${formatDiagnostic(d)}`);

export interface ExecuteRequest {
  language: Language;
  code: string;
  stdin?: string;
  limits?: Partial<Limits>;
  network?: boolean;
  backend?: BackendName;
  /** false skips static analysis (CLI `--no-analysis`). */
  analysis?: boolean;
  /** Extra files beside the program and another entry point (task handlers' harness). */
  extraFiles?: Record<string, string | Uint8Array>;
  main?: string;
  /** The program's arguments, after the entry file. */
  args?: string[];
}

export interface ExecuteOutcome {
  analysis: AnalysisReport | null;
  result: RunResult;
}

/** Analysis (unless turned off) and one run: `warden run`. Throws CodeTooLargeError for oversized code. */
export async function executeCode(deps: RunnerDeps, req: ExecuteRequest): Promise<ExecuteOutcome> {
  const report = req.analysis === false ? null : await analyze(req.code, req.language.analysis, deps.policy);
  const backend = req.backend ?? deps.engine.defaultBackend;
  const rejected = securityRejections(report);
  if (rejected.length > 0) {
    const summary = rejected.map((f) => `line ${f.line}: ${f.message}`).join('\n');
    return {
      analysis: report,
      result: resultWithoutRun(backend, 'security_violation', {
        stderr: `rejected by static analysis:\n${summary}\n`,
      }),
    };
  }
  const problems = await compileProblems(
    req.language,
    req.code,
    report,
    req.analysis !== false && deps.typecheck === true,
  );
  if (problems.length > 0) {
    return {
      analysis: report,
      result: resultWithoutRun(backend, 'compile_error', {
        stderr: `${compileNotes(problems).join('\n')}\n`,
      }),
    };
  }
  let spec;
  try {
    spec = await buildRun(req.language, req.code, {
      stdin: req.stdin,
      limits: req.limits,
      extraFiles: req.extraFiles,
      main: req.main,
      args: req.args,
    });
  } catch (err) {
    if (!(err instanceof CompileError)) throw err;
    return {
      analysis: report,
      result: resultWithoutRun(backend, 'compile_error', {
        stderr: `${compileNotes(err.diagnostics).join('\n')}\n`,
      }),
    };
  }
  const result = await deps.engine.run(
    { ...spec, network: req.network ? { enabled: true } : undefined },
    { backend: req.backend },
  );
  // A compile error only the runtime found, before any of the code ran (see load-error.ts).
  const problem = loadError(spec, result);
  if (problem) {
    const notes = [...compileNotes([problem]), 'the code was not run: the runtime could not compile it'];
    return {
      analysis: report,
      result: { ...result, status: 'compile_error', stdout: '', stderr: `${notes.join('\n')}\n` },
    };
  }
  return { analysis: report, result };
}

const MiB = 1024 * 1024;
const seconds = (ms: number) => Math.round(ms) / 1000;

/** Request units (seconds, MiB, cores) → engine limits; the engine clamps them to the operator's ceilings. */
export function engineLimits(limits: RequestLimits | undefined): Partial<Limits> {
  const out: Partial<Limits> = {};
  if (limits?.timeout !== undefined) {
    out.wallTimeMs = Math.max(1, Math.round(limits.timeout * 1000));
    out.cpuTimeMs = out.wallTimeMs;
  }
  if (limits?.memory_limit !== undefined) out.memoryBytes = Math.round(limits.memory_limit * MiB);
  if (limits?.cpu_limit !== undefined) out.cpus = limits.cpu_limit;
  return out;
}

/** Warden's own failure, as the user reads it: never blamed on the code. */
export function wardenFault(requestId: string, why: string): string {
  return `internal error in Warden (request ${requestId}): ${why}; the code was not judged`;
}

/** A response for an execution that produced no run (rejected, or abandoned by the service). */
export function emptyResponse(requestId: string, status: Verdict, errors: string[]): ExecutionResponse {
  return {
    request_id: requestId,
    success: false,
    status,
    output: '',
    errors,
    test_results: [],
    resource_usage: { cpu_time: 0, peak_memory: 0, wall_time: 0 },
    security_violations: [],
    execution_time: 0,
    all_tests_passed: false,
    has_security_violations: false,
    truncated: false,
  };
}

export interface ExecutionHooks {
  /** Called after every sandboxed run (metrics). */
  onRun?: (language: LanguageId, result: RunResult) => void;
  /** Called with the static report before any run. */
  onAnalysis?: (language: LanguageId, report: AnalysisReport) => void;
  /** Warden's own failures, for the server log (never shown to the user). */
  onInternalError?: (err: unknown, detail: string) => void;
}

/**
 * What static analysis and compiling decided: go on and run, or the final answer (rejected, does not
 * compile, or Warden failed).
 */
export type AnalysisDecision = { kind: 'run' } | { kind: 'answer'; response: ExecutionResponse };

export async function analyzeExecution(
  deps: RunnerDeps & ExecutionHooks,
  requestId: string,
  req: ExecutionRequest,
): Promise<AnalysisDecision> {
  const started = performance.now();
  // A route may turn the analysis off (piston.analysis: false): findings then reject nothing.
  const policy: Partial<AnalysisPolicy> =
    req.options?.analysis === false ? { ...deps.policy, profile: 'off' } : deps.policy;
  let report: AnalysisReport;
  try {
    report = await analyze(req.code, LANGUAGES[req.language].analysis, policy);
    report = await withExtraFiles(report, req, policy);
  } catch (err) {
    if (err instanceof CodeTooLargeError)
      return { kind: 'answer', response: emptyResponse(requestId, 'failed', [err.message]) };
    deps.onInternalError?.(err, 'static analysis failed');
    return {
      kind: 'answer',
      response: emptyResponse(requestId, 'error', [wardenFault(requestId, 'static analysis failed')]),
    };
  }
  deps.onAnalysis?.(req.language, report);
  const lang = LANGUAGES[req.language];
  const rejected = securityRejections(report);
  // Rejected code is not compiled; its syntax error, if any, is told beside the findings.
  const problems =
    rejected.length > 0
      ? syntaxProblems(report)
      : await compileProblems(lang, req.code, report, deps.typecheck === true);
  const caseResults = (status: Verdict) =>
    (req.test_cases ?? []).map((c) => ({
      name: c.name,
      passed: false,
      actual_output: '',
      expected_output: c.expected_output,
      execution_time: 0,
      status,
      truncated: false,
    }));
  if (rejected.length === 0) {
    if (problems.length === 0) return { kind: 'run' };
    return {
      kind: 'answer',
      response: {
        ...emptyResponse(requestId, 'compile_error', [
          ...compileNotes(problems),
          'the code was not run: it does not compile',
        ]),
        test_results: caseResults('compile_error'),
        execution_time: seconds(performance.now() - started),
      },
    };
  }
  const violations: SecurityViolation[] = report.findings
    .filter((f) => f.rule !== SYNTAX_RULE)
    .map((f) => ({
      rule: f.rule,
      severity: f.severity,
      message: f.message,
      line: f.line,
      column: f.column,
      source: 'static',
    }));
  return {
    kind: 'answer',
    response: {
      ...emptyResponse(requestId, 'security_violation', [
        `rejected by static analysis: ${rejected.length} finding(s) the analysis profile rejects; the code was not run`,
        ...compileNotes(problems),
      ]),
      test_results: caseResults('security_violation'),
      security_violations: violations,
      has_security_violations: true,
      execution_time: seconds(performance.now() - started),
    },
  };
}

/** One run as kept until the answer is assembled: outputs already cut to the case's share. */
export interface CaseOutcome {
  status: Verdict | 'skipped';
  stdout: string;
  /** stderr and notes, not yet prefixed with the case name. */
  errors: string[];
  /** Cut to fit the answer's size (not the sandbox's own output limit, which `errors` reports). */
  truncated: boolean;
  usage: { wallMs: number; cpuMs: number; peakMemoryBytes: number };
  violations: SecurityViolation[];
  /** The run as a process, for requests with `options.detail`. */
  process?: ProcessDetail;
}

/** Bytes of answer a case's stdout and stderr may take together, the rest being the answer's frame. */
export function outputShare(req: ExecutionRequest, maxResponseBytes: number): number {
  const cases = req.test_cases ?? [];
  // Per case: its name (in test_results and prefixing each line of errors), its expected output, the
  // notes and the fixed fields. Beyond that, the outputs share what is left equally.
  const frame =
    4096 + cases.reduce((sum, c) => sum + 1024 + 8 * jsonBytes(c.name) + jsonBytes(c.expected_output), 0);
  return Math.max(0, Math.floor((maxResponseBytes - frame) / Math.max(1, cases.length)));
}

export interface CaseBudget {
  /** Wall time left of the request's budget (sandbox.maxRequestMs); the run is cut to it. */
  remainingMs: number;
  /** The run's own wall limit (the request's, or the default), to know when the budget is what cuts it. */
  wallTimeMs: number;
  /** JSON bytes stdout and stderr may take together. */
  outputBytes: number;
}

/** What a case gets when the request's time budget is spent before it could start. */
export function skippedCase(maxRequestMs: number): CaseOutcome {
  return {
    status: 'skipped',
    stdout: '',
    errors: [
      `skipped: the request's time budget (sandbox.maxRequestMs, ${seconds(maxRequestMs)} s for all cases) was used up`,
    ],
    truncated: false,
    usage: { wallMs: 0, cpuMs: 0, peakMemoryBytes: 0 },
    violations: [],
  };
}

/** A case Warden could not run (an exception in the worker): an `error`, never the code's fault. */
export function failedCase(requestId: string, why: string): CaseOutcome {
  return {
    status: 'error',
    stdout: '',
    errors: [wardenFault(requestId, why)],
    truncated: false,
    usage: { wallMs: 0, cpuMs: 0, peakMemoryBytes: 0 },
    violations: [],
  };
}

/** One sandboxed run of the request's code with this stdin, within the case's budget. */
export async function runCase(
  deps: RunnerDeps & ExecutionHooks,
  requestId: string,
  req: ExecutionRequest,
  stdin: string | undefined,
  budget: CaseBudget,
): Promise<CaseOutcome> {
  const limits = engineLimits(req.limits);
  if (req.options?.cpuTimeMs !== undefined) limits.cpuTimeMs = req.options.cpuTimeMs;
  const cutByBudget = budget.remainingMs < budget.wallTimeMs;
  if (cutByBudget) limits.wallTimeMs = Math.max(1, Math.floor(budget.remainingMs));
  const { result } = await executeCode(deps, {
    language: LANGUAGES[req.language],
    code: req.code,
    stdin,
    limits,
    network: req.limits?.network_access === true,
    backend: req.backend,
    analysis: false,
    extraFiles: extraFiles(req),
    args: req.options?.args,
  });
  if (result.status === 'error')
    deps.onInternalError?.(new Error(result.error ?? 'sandbox error'), 'sandbox run failed');
  deps.onRun?.(req.language, result);

  // A process's stderr is kept exact; as a line of `errors`, its trailing newlines go.
  const stderr = req.options?.detail ? result.stderr : result.stderr.trimEnd();
  const fitted = fitPair(result.stdout, stderr, budget.outputBytes);
  const errors: string[] = [];
  if (fitted.second) errors.push(fitted.second);
  if (result.truncated.stdout) errors.push('stdout was truncated at the output limit');
  if (result.truncated.stderr) errors.push('stderr was truncated at the output limit');
  if (fitted.cut) errors.push('output was cut to fit the answer’s size limit (server.maxResponseBytes)');
  if (result.status === 'timeout')
    errors.push(
      cutByBudget
        ? 'the request’s time budget (sandbox.maxRequestMs) ran out during this run'
        : 'the time limit was reached',
    );
  if (result.status === 'memory_limit_exceeded') errors.push('the memory limit was reached');
  if (result.status === 'error') errors.push(wardenFault(requestId, 'the sandbox failed'));
  const detail: ProcessDetail | undefined = req.options?.detail
    ? {
        exit_code: result.exitCode,
        signal: result.signal,
        stderr: fitted.second,
        notes: fitted.second ? errors.slice(1) : errors,
        truncated: result.truncated,
        ...(result.timeLimit && { time_limit: result.timeLimit }),
      }
    : undefined;
  return {
    status: result.status,
    stdout: fitted.first,
    errors,
    truncated: fitted.cut,
    usage: {
      wallMs: result.usage.wallMs,
      cpuMs: result.usage.cpuMs,
      peakMemoryBytes: result.usage.peakMemoryBytes,
    },
    violations: result.violations.map(runtimeViolation),
    ...(detail && { process: detail }),
  };
}

function runtimeViolation(v: Violation): SecurityViolation {
  return {
    rule: v.rule,
    severity: 'critical',
    message: v.message,
    line: null,
    column: null,
    source: 'runtime',
  };
}

/** When cases disagree, the overall status is the most serious verdict among those that ran. */
const SERIOUSNESS: Verdict[] = [
  'error',
  'security_violation',
  // The same for every case (decided before any runs, or by the runtime loading the code): never
  // mixed with other verdicts.
  'compile_error',
  'memory_limit_exceeded',
  'timeout',
  'output_limit_exceeded',
  'failed',
  'success',
];

function worst(statuses: CaseOutcome['status'][]): Verdict {
  return SERIOUSNESS.find((v) => statuses.includes(v)) ?? 'success';
}

/**
 * The answer from the outcomes: one (no test cases) or one per case in the order given. `elapsedMs`
 * runs from the moment a worker took the request.
 */
export function assembleResponse(
  requestId: string,
  req: ExecutionRequest,
  outcomes: CaseOutcome[],
  elapsedMs: number,
): ExecutionResponse {
  const cases: (TestCase | undefined)[] = req.test_cases?.length ? req.test_cases : [undefined];
  const errors: string[] = [];
  const testResults: TestResult[] = [];
  cases.forEach((c, i) => {
    const o = outcomes[i];
    if (!o) throw new Error(`case ${i} of ${requestId} has no outcome`);
    if (!c) {
      errors.push(...o.errors);
      return;
    }
    errors.push(...o.errors.map((e) => `${c.name}: ${e}`));
    testResults.push({
      name: c.name,
      passed: o.status === 'success' && o.stdout.trim() === c.expected_output.trim(),
      actual_output: o.stdout,
      expected_output: c.expected_output,
      execution_time: seconds(o.usage.wallMs),
      status: o.status,
      truncated: o.truncated,
    });
  });
  const seen = new Set<string>();
  const violations = outcomes
    .flatMap((o) => o.violations)
    .filter((v) => {
      const key = `${v.rule}\n${v.message}`;
      return seen.has(key) ? false : (seen.add(key), true);
    });
  const status = worst(outcomes.map((o) => o.status));
  const success = status === 'success';
  return {
    request_id: requestId,
    success,
    status,
    output: req.test_cases?.length ? '' : (outcomes[0]?.stdout ?? ''),
    errors,
    test_results: testResults,
    resource_usage: {
      cpu_time: seconds(outcomes.reduce((s, o) => s + o.usage.cpuMs, 0)),
      peak_memory: Math.max(0, ...outcomes.map((o) => o.usage.peakMemoryBytes)),
      wall_time: seconds(outcomes.reduce((s, o) => s + o.usage.wallMs, 0)),
    },
    security_violations: violations,
    execution_time: seconds(elapsedMs),
    all_tests_passed: req.test_cases?.length ? testResults.every((t) => t.passed) : success,
    has_security_violations: violations.length > 0,
    truncated: outcomes.some((o) => o.truncated),
    ...(!req.test_cases?.length && outcomes[0]?.process && { process: outcomes[0].process }),
  };
}
