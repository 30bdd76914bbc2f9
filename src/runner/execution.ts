import { analyze, CodeTooLargeError, type AnalysisReport, type Finding } from '../analysis/index.js';
import { LANGUAGES, type Language, type LanguageId } from '../languages/index.js';
import type { BackendName, Limits, RunResult, Verdict, Violation } from '../sandbox/types.js';
import { executeCode, type RunnerDeps } from './execute.js';

/**
 * One POST /execute as the workers see it: static analysis once, then one sandboxed run, or one run
 * per test case, folded into the response the API answers. Shapes are the API's (snake_case) so a
 * stored response is exactly what the client got.
 */

export interface TestCase {
  name: string;
  input_data: string;
  expected_output: string;
}

export interface RequestLimits {
  /** Seconds of wall-clock time per run; also the CPU-time limit. */
  timeout?: number;
  /** MiB. */
  memory_limit?: number;
  /** Cores. */
  cpu_limit?: number;
  network_access?: boolean;
}

export interface ExecutionRequest {
  code: string;
  language: LanguageId;
  stdin?: string;
  test_cases?: TestCase[];
  limits?: RequestLimits;
  backend?: BackendName;
}

export interface SecurityViolation {
  rule: string;
  severity: 'low' | 'medium' | 'high' | 'critical';
  message: string;
  line: number | null;
  column: number | null;
  /** `static`: found in the source before any run; `runtime`: caught by the sandbox (e.g. a forbidden syscall). */
  source: 'static' | 'runtime';
}

export interface TestResult {
  name: string;
  passed: boolean;
  actual_output: string;
  expected_output: string;
  execution_time: number;
  status: Verdict;
}

export interface ResourceUsage {
  cpu_time: number;
  peak_memory: number;
  wall_time: number;
}

export interface ExecutionResponse {
  request_id: string;
  success: boolean;
  status: Verdict;
  output: string;
  errors: string[];
  test_results: TestResult[];
  resource_usage: ResourceUsage;
  security_violations: SecurityViolation[];
  execution_time: number;
  all_tests_passed: boolean;
  has_security_violations: boolean;
}

const MiB = 1024 * 1024;

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

/** When test cases disagree, the overall status is the most serious verdict among them. */
const SERIOUSNESS: Verdict[] = [
  'error',
  'security_violation',
  'memory_limit_exceeded',
  'timeout',
  'output_limit_exceeded',
  'failed',
  'success',
];

function worst(verdicts: Verdict[]): Verdict {
  return SERIOUSNESS.find((v) => verdicts.includes(v)) ?? 'success';
}

const seconds = (ms: number) => Math.round(ms) / 1000;

function staticViolation(f: Finding): SecurityViolation {
  return {
    rule: f.rule,
    severity: f.severity,
    message: f.message,
    line: f.line,
    column: f.column,
    source: 'static',
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

/** What a user should read about a run beyond its stdout; Warden's own failures stay generic. */
function runErrors(result: RunResult, requestId: string): string[] {
  const errors: string[] = [];
  const stderr = result.stderr.trimEnd();
  if (stderr) errors.push(stderr);
  if (result.truncated.stdout) errors.push('stdout was truncated at the output limit');
  if (result.truncated.stderr) errors.push('stderr was truncated at the output limit');
  if (result.status === 'timeout') errors.push('the time limit was reached');
  if (result.status === 'memory_limit_exceeded') errors.push('the memory limit was reached');
  if (result.status === 'error')
    errors.push(`internal error in Warden (request ${requestId}); the code was not judged`);
  return errors;
}

export interface ExecutionHooks {
  /** Called after every sandboxed run (metrics). */
  onRun?: (language: LanguageId, result: RunResult) => void;
  /** Called with the static report before any run. */
  onAnalysis?: (language: LanguageId, report: AnalysisReport) => void;
  /** Warden's own failures, for the server log (never shown to the user). */
  onInternalError?: (err: unknown, detail: string) => void;
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
  };
}

export async function runExecution(
  deps: RunnerDeps & ExecutionHooks,
  requestId: string,
  req: ExecutionRequest,
): Promise<ExecutionResponse> {
  const started = performance.now();
  const language: Language = LANGUAGES[req.language];
  const elapsed = () => seconds(performance.now() - started);

  let report: AnalysisReport;
  try {
    report = await analyze(req.code, language.analysis, deps.policy);
  } catch (err) {
    if (err instanceof CodeTooLargeError) return emptyResponse(requestId, 'failed', [err.message]);
    deps.onInternalError?.(err, 'static analysis failed');
    return emptyResponse(requestId, 'error', [
      `internal error in Warden (request ${requestId}); the code was not judged`,
    ]);
  }
  deps.onAnalysis?.(req.language, report);

  const cases = req.test_cases ?? [];
  if (!report.safe) {
    const violations = report.findings.map(staticViolation);
    return {
      ...emptyResponse(requestId, 'security_violation', [
        `rejected by static analysis: ${report.rejected.length} finding(s) at or above the policy's severity; the code was not run`,
      ]),
      test_results: cases.map((c) => ({
        name: c.name,
        passed: false,
        actual_output: '',
        expected_output: c.expected_output,
        execution_time: 0,
        status: 'security_violation' as const,
      })),
      security_violations: violations,
      has_security_violations: true,
      execution_time: elapsed(),
    };
  }

  const limits = engineLimits(req.limits);
  const runOnce = async (stdin: string | undefined): Promise<RunResult> => {
    const { result } = await executeCode(deps, {
      language,
      code: req.code,
      stdin,
      limits,
      network: req.limits?.network_access === true,
      backend: req.backend,
      analysis: false,
    });
    if (result.status === 'error')
      deps.onInternalError?.(new Error(result.error ?? 'sandbox error'), 'sandbox run failed');
    deps.onRun?.(req.language, result);
    return result;
  };

  const results: RunResult[] = [];
  const testResults: TestResult[] = [];
  const errors: string[] = [];
  if (cases.length === 0) {
    const result = await runOnce(req.stdin);
    results.push(result);
    errors.push(...runErrors(result, requestId));
  } else {
    // One after the other: a worker's concurrency is what bounds the sandboxes running at once.
    for (const c of cases) {
      const result = await runOnce(c.input_data);
      results.push(result);
      errors.push(...runErrors(result, requestId).map((e) => `${c.name}: ${e}`));
      testResults.push({
        name: c.name,
        passed: result.status === 'success' && result.stdout.trim() === c.expected_output.trim(),
        actual_output: result.stdout,
        expected_output: c.expected_output,
        execution_time: seconds(result.usage.wallMs),
        status: result.status,
      });
    }
  }

  const status = worst(results.map((r) => r.status));
  const seen = new Set<string>();
  const violations = results
    .flatMap((r) => r.violations.map(runtimeViolation))
    .filter((v) => {
      const key = `${v.rule}\n${v.message}`;
      return seen.has(key) ? false : (seen.add(key), true);
    });
  const success = status === 'success';
  return {
    request_id: requestId,
    success,
    status,
    output: cases.length === 0 ? (results[0]?.stdout ?? '') : '',
    errors,
    test_results: testResults,
    resource_usage: {
      cpu_time: seconds(results.reduce((s, r) => s + r.usage.cpuMs, 0)),
      peak_memory: Math.max(0, ...results.map((r) => r.usage.peakMemoryBytes)),
      wall_time: seconds(results.reduce((s, r) => s + r.usage.wallMs, 0)),
    },
    security_violations: violations,
    execution_time: elapsed(),
    all_tests_passed: cases.length === 0 ? success : testResults.every((t) => t.passed),
    has_security_violations: violations.length > 0,
  };
}
