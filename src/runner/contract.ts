import { z } from 'zod';
import type { WardenConfig } from '../config/schema.js';
import { LANGUAGE_IDS } from '../languages/index.js';
import { BACKEND_NAMES, VERDICTS } from '../sandbox/types.js';
import { callbackUrl } from '../webhooks/schema.js';

/**
 * What a POST /execute is and what it answers, as zod schemas: the API validates and documents with
 * them (OpenAPI), and the runner's types are inferred from them, so the two cannot drift apart.
 */

const MiB = 1024 * 1024;
const seconds = (ms: number) => ms / 1000;

/** The kernel refuses a CPU quota under 1 ms per 100 ms period: 0.01 cores is the least a run can get. */
export const MIN_CPU_CORES = 0.01;

export const verdict = z
  .enum(VERDICTS)
  .describe(
    'success; failed (non-zero exit); timeout; memory_limit_exceeded; output_limit_exceeded; compile_error (the code does not parse, transpile or type-check: `errors` gives each problem’s line and column; the code was not run, and it is not a security violation); security_violation (rejected by static analysis, or a forbidden action at run time); error (Warden’s own fault, never the code’s).',
  );

export const caseStatus = z
  .enum([...VERDICTS, 'skipped'])
  .describe(
    'The verdict of this case’s run, or `skipped`: the request’s time budget (sandbox.maxRequestMs) was spent before the case could run (not a verdict on the code; `errors` says why).',
  );

export function executeRequest(config: WardenConfig) {
  const { limits, maxLimits } = config.sandbox;
  const { bodyLimitBytes, maxTestCases } = config.server;
  const testCase = z.strictObject({
    name: z.string().min(1).max(200).describe('Shown in test_results.'),
    input_data: z.string().max(bodyLimitBytes).default('').describe('Standard input of this run.'),
    expected_output: z
      .string()
      .max(bodyLimitBytes)
      .describe('The test passes when the run succeeds and its stdout, trimmed, equals this, trimmed.'),
  });
  const requestLimits = z
    .strictObject({
      timeout: z
        .number()
        .min(0.001)
        .max(3600)
        .optional()
        .describe(
          `Seconds of wall-clock time per run (0.001 to 3600), also used as its CPU-time limit. Default ${seconds(limits.wallTimeMs)} s wall / ${seconds(limits.cpuTimeMs)} s CPU; values above ${seconds(maxLimits.wallTimeMs)} s are clamped to it.`,
        ),
      memory_limit: z
        .number()
        .min(16)
        .max(1024 * 1024)
        .optional()
        .describe(
          `MB (MiB: 1,048,576 bytes) for all processes of a run together, 16 to 1,048,576. Default ${limits.memoryBytes / MiB}; values above ${maxLimits.memoryBytes / MiB} are clamped to it.`,
        ),
      cpu_limit: z
        .number()
        .min(MIN_CPU_CORES)
        .max(64)
        .optional()
        .describe(
          `CPU bandwidth in cores (0.5 = half a core), ${MIN_CPU_CORES} to 64. Default ${limits.cpus}; clamped to ${maxLimits.cpus}.`,
        ),
      network_access: z
        .boolean()
        .default(false)
        .describe(
          config.sandbox.allowNetwork
            ? 'Give the run network access (allowed by this server’s configuration).'
            : 'Must be false on this server (sandbox.allowNetwork is off): true is refused with 400.',
        ),
    })
    .describe('Per-run limits; each test case gets these limits for its own run.');
  return z.strictObject({
    code: z
      .string()
      .min(1)
      .max(config.analysis.maxCodeChars)
      .describe(`Source code, at most ${config.analysis.maxCodeChars} characters.`),
    language: z
      .string()
      .min(1)
      .max(32)
      .describe('`python`, `javascript` or `typescript` (or an alias listed by GET /languages).'),
    stdin: z.string().max(bodyLimitBytes).optional().describe('Standard input (single run only).'),
    test_cases: z
      .array(testCase)
      .max(maxTestCases)
      .optional()
      .describe(
        `Up to ${maxTestCases} cases, each run in its own fresh sandbox with input_data as stdin; cases may run in parallel on several workers. A case that times out does not stop the others. All cases together get ${seconds(config.sandbox.maxRequestMs)} s of wall time from the moment a worker takes the request (cases past it are \`skipped\`) and share ${config.server.maxResponseBytes} bytes of answer (outputs past it are cut and flagged \`truncated\`).`,
      ),
    limits: requestLimits.optional(),
    backend: z
      .enum(BACKEND_NAMES)
      .optional()
      .describe(
        `Isolation backend. Default: ${config.sandbox.backend}. Another must work on this host and isolate (the \`process\` backend is only served when it is the configured default).`,
      ),
    callback_url: callbackUrl,
  });
}

export type ExecuteRequestBody = z.infer<ReturnType<typeof executeRequest>>;
export type TestCase = NonNullable<ExecuteRequestBody['test_cases']>[number];
export type RequestLimits = NonNullable<ExecuteRequestBody['limits']>;

/**
 * What only the Piston-compatible API (`/api/v2/execute`) asks of a run. A /execute body cannot carry
 * it (its schema is strict): that route adds it to the request it stores.
 */
export interface RunOptions {
  /** The program's arguments, after the entry file. */
  args?: string[];
  /** CPU time limit in ms when it is not the wall limit (`limits.timeout` sets both). */
  cpuTimeMs?: number;
  /** Files written beside the entry: name → content as base64 (they may be binary). */
  files?: Record<string, string>;
  /** false: findings are reported but reject nothing (profile `off`); code that does not parse still never runs. */
  analysis?: boolean;
  /** Answer the run's exit code, signal and stderr apart from the notes (`process` of the response). */
  detail?: boolean;
}

/** A request as queued and stored: the body with its language resolved to an id. */
export type ExecutionRequest = Omit<ExecuteRequestBody, 'language'> & {
  language: (typeof LANGUAGE_IDS)[number];
  options?: RunOptions;
};

/** How the one run of a request with `options.detail` ended, as a process: what /execute folds into `errors`. */
export interface ProcessDetail {
  exit_code: number | null;
  signal: string | null;
  /** The program's own stderr (cut like the answer's outputs). */
  stderr: string;
  /** Warden's notes (limit reached, truncation, analysis or compile problems), stderr not included. */
  notes: string[];
  /** Which stream passed the sandbox's output limit (`output_limit_exceeded`). */
  truncated: { stdout: boolean; stderr: boolean };
  /** With `timeout`: the limit that ended the run. */
  time_limit?: 'wall' | 'cpu';
}

const severity = z.enum(['low', 'medium', 'high', 'critical']);

export const securityViolation = z.object({
  rule: z.string(),
  severity,
  message: z.string(),
  line: z
    .number()
    .int()
    .nullable()
    .describe('1-based line of a static finding; null for run-time violations.'),
  column: z.number().int().nullable(),
  source: z
    .enum(['static', 'runtime'])
    .describe(
      'static: found in the source before any run; runtime: caught by the sandbox (e.g. a forbidden system call).',
    ),
});

export type SecurityViolation = z.infer<typeof securityViolation>;

export const testResult = z.object({
  name: z.string(),
  passed: z
    .boolean()
    .describe('The run succeeded and its trimmed stdout equals the trimmed expected_output.'),
  actual_output: z.string(),
  expected_output: z.string(),
  execution_time: z.number().describe('Seconds of wall-clock time of this case’s run.'),
  status: caseStatus,
  truncated: z
    .boolean()
    .default(false)
    .describe(
      'actual_output (or this case’s stderr in errors) was cut to fit the answer’s size limit (server.maxResponseBytes).',
    ),
});

export type TestResult = z.infer<typeof testResult>;

export const executeResponse = z
  .object({
    request_id: z.string(),
    success: z
      .boolean()
      .describe('status is `success`. With test cases, see all_tests_passed for the verdict on outputs.'),
    status: verdict.describe(
      'Verdict of the run; with test cases, the most serious verdict among the cases that ran (error > security_violation > compile_error > memory_limit_exceeded > timeout > output_limit_exceeded > failed > success).',
    ),
    output: z
      .string()
      .describe('stdout of the run (capped). Empty with test cases: see test_results[].actual_output.'),
    errors: z
      .array(z.string())
      .describe(
        'stderr and notes (limits reached, truncation, skipped cases); with test cases, each prefixed with the case name.',
      ),
    test_results: z.array(testResult).describe('One per test case, in the order given.'),
    resource_usage: z.object({
      cpu_time: z.number().describe('Seconds of CPU time, summed over all runs.'),
      peak_memory: z
        .number()
        .int()
        .describe('Bytes: the highest peak memory of any run (note: limits.memory_limit is in MiB).'),
      wall_time: z.number().describe('Seconds of wall-clock time inside sandboxes, summed over all runs.'),
    }),
    security_violations: z
      .array(securityViolation)
      .describe(
        'When static analysis rejected the code: all its findings (the code never ran; a syntax error is not one of them, it is in errors). Otherwise: forbidden actions caught at run time.',
      ),
    execution_time: z
      .number()
      .describe('Seconds from the moment a worker took the request to its end (analysis and every run).'),
    all_tests_passed: z.boolean().describe('Every test case passed; without test cases, equals success.'),
    has_security_violations: z.boolean(),
    truncated: z
      .boolean()
      .default(false)
      .describe('Some output was cut to keep the answer under server.maxResponseBytes (see errors).'),
  })
  .describe('Result of an execution. Times in seconds, memory in bytes.');

/** The answer as stored; `process` only for requests with `options.detail` (never part of /execute's schema). */
export type ExecutionResponse = z.infer<typeof executeResponse> & { process?: ProcessDetail };
