import { z } from 'zod';
import type { WardenConfig } from '../config/schema.js';
import { MAX_TASK_NAME_CHARS, type ValidationReport } from '../pipeline/index.js';
import type { ExecutionResponse } from '../runner/execution.js';
import { BACKEND_NAMES, VERDICTS } from '../sandbox/types.js';

/**
 * Every edge of the HTTP API as zod schemas: Fastify validates requests and serialises responses
 * with them, and /docs (OpenAPI) is generated from them. Units are stated where a number is one.
 */

const MiB = 1024 * 1024;
const seconds = (ms: number) => ms / 1000;

export const MAX_TEST_CASES = 50;

export const errorBody = z
  .object({
    error: z.object({
      code: z
        .string()
        .describe('Stable machine-readable code, e.g. `invalid_request`, `unknown_language`, `queue_full`.'),
      message: z.string().describe('What went wrong, for a person.'),
      field: z
        .string()
        .nullable()
        .describe('The request field at fault as a dotted path (e.g. `limits.timeout`), or null.'),
      request_id: z.string().describe('Quote it when reporting a problem: the server logs carry it.'),
    }),
  })
  .describe('Every error answer has this shape.');

export type ErrorBody = z.infer<typeof errorBody>;

/** Error answers a route can give, for the OpenAPI document. */
export function errors(
  ...codes: (400 | 404 | 409 | 413 | 415 | 429 | 500 | 503)[]
): Record<number, typeof errorBody> {
  return Object.fromEntries(codes.map((c) => [c, errorBody]));
}

export const verdict = z
  .enum(VERDICTS)
  .describe(
    'success; failed (non-zero exit); timeout; memory_limit_exceeded; output_limit_exceeded; security_violation (rejected by static analysis, or a forbidden action at run time); error (Warden’s own fault, never the code’s).',
  );

export const finding = z.object({
  rule: z.string().describe('Rule id, see GET /languages/{language}/validate.'),
  severity: z.enum(['low', 'medium', 'high', 'critical']),
  message: z.string(),
  line: z.number().int().describe('1-based.'),
  column: z.number().int().describe('1-based, in UTF-16 code units.'),
});

export function executeRequest(config: WardenConfig) {
  const { limits, maxLimits } = config.sandbox;
  const testCase = z.strictObject({
    name: z.string().min(1).max(200).describe('Shown in test_results.'),
    input_data: z
      .string()
      .max(config.server.bodyLimitBytes)
      .default('')
      .describe('Standard input of this run.'),
    expected_output: z
      .string()
      .max(config.server.bodyLimitBytes)
      .describe('The test passes when the run succeeds and its stdout, trimmed, equals this, trimmed.'),
  });
  const requestLimits = z
    .strictObject({
      timeout: z
        .number()
        .positive()
        .max(3600)
        .optional()
        .describe(
          `Seconds of wall-clock time per run, also used as its CPU-time limit. Default ${seconds(limits.wallTimeMs)} s wall / ${seconds(limits.cpuTimeMs)} s CPU; values above ${seconds(maxLimits.wallTimeMs)} s are clamped to it.`,
        ),
      memory_limit: z
        .number()
        .min(16)
        .max(1024 * 1024)
        .optional()
        .describe(
          `MB (MiB: 1,048,576 bytes) for all processes of a run together. Default ${limits.memoryBytes / MiB}; values above ${maxLimits.memoryBytes / MiB} are clamped to it.`,
        ),
      cpu_limit: z
        .number()
        .positive()
        .max(64)
        .optional()
        .describe(
          `CPU bandwidth in cores (0.5 = half a core). Default ${limits.cpus}; clamped to ${maxLimits.cpus}.`,
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
    stdin: z
      .string()
      .max(config.server.bodyLimitBytes)
      .optional()
      .describe('Standard input (single run only).'),
    test_cases: z
      .array(testCase)
      .max(MAX_TEST_CASES)
      .optional()
      .describe(
        `Up to ${MAX_TEST_CASES} cases, each run in its own fresh sandbox with input_data as stdin, one after the other; a case that times out does not stop the others.`,
      ),
    limits: requestLimits.optional(),
    backend: z
      .enum(BACKEND_NAMES)
      .optional()
      .describe(
        `Isolation backend. Default: ${config.sandbox.backend}. Another must work on this host and isolate (the \`process\` backend is only served when it is the configured default).`,
      ),
  });
}

export type ExecuteRequestBody = z.infer<ReturnType<typeof executeRequest>>;

export const executeQuery = z.strictObject({
  wait: z
    .enum(['true', 'false'])
    .default('true')
    .describe('false: answer 202 with the request_id at once and poll GET /executions/{request_id}.'),
});

export const securityViolation = z.object({
  rule: z.string(),
  severity: z.enum(['low', 'medium', 'high', 'critical']),
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

export const executeResponse = z
  .object({
    request_id: z.string(),
    success: z
      .boolean()
      .describe('status is `success`. With test cases, see all_tests_passed for the verdict on outputs.'),
    status: verdict.describe(
      'Verdict of the run; with test cases, the most serious verdict among them (error > security_violation > memory_limit_exceeded > timeout > output_limit_exceeded > failed > success).',
    ),
    output: z
      .string()
      .describe('stdout of the run (capped). Empty with test cases: see test_results[].actual_output.'),
    errors: z
      .array(z.string())
      .describe(
        'stderr and notes (limits reached, truncation); with test cases, each prefixed with the case name.',
      ),
    test_results: z
      .array(
        z.object({
          name: z.string(),
          passed: z
            .boolean()
            .describe('The run succeeded and its trimmed stdout equals the trimmed expected_output.'),
          actual_output: z.string(),
          expected_output: z.string(),
          execution_time: z.number().describe('Seconds of wall-clock time of this case’s run.'),
          status: verdict,
        }),
      )
      .describe('One per test case, in the order given.'),
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
        'When static analysis rejected the code: all its findings (the code never ran). Otherwise: forbidden actions caught at run time.',
      ),
    execution_time: z
      .number()
      .describe('Seconds from the moment a worker took the request to its end (analysis and every run).'),
    all_tests_passed: z.boolean().describe('Every test case passed; without test cases, equals success.'),
    has_security_violations: z.boolean(),
  })
  .describe('Result of an execution. Times in seconds, memory in bytes.');

// The worker builds responses as plain objects; keep both definitions in step.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never;
const responseShapesAgree: Same<z.infer<typeof executeResponse>, ExecutionResponse> = true;
void responseShapesAgree;

export const executionState = z.enum(['pending', 'running', 'done']);

export const accepted = z.object({
  request_id: z.string(),
  status: executionState.exclude(['done']),
  poll: z.string().describe('Where the result will be: GET this URL.'),
});

export const executionRecord = z.object({
  request_id: z.string(),
  status: executionState,
  language: z.string(),
  created_at: z.string().describe('ISO 8601.'),
  started_at: z.string().nullable(),
  finished_at: z.string().nullable(),
  response: executeResponse.nullable().describe('The POST /execute answer once status is `done`, else null.'),
});

export const requestIdParams = z.strictObject({ request_id: z.string().min(1).max(64) });

export function validateRequest(config: WardenConfig) {
  return z.strictObject({
    code: z.string().min(1).max(config.analysis.maxCodeChars),
    language: z.string().min(1).max(32),
  });
}

export const validateResponse = z.object({
  safe: z.boolean().describe('No finding at or above the policy’s severity: the code would be run.'),
  language: z.string(),
  reject_at: z
    .enum(['low', 'medium', 'high', 'critical'])
    .describe('Findings at or above this severity reject code.'),
  violations: z
    .array(finding)
    .describe('Every finding, sorted by position, including those below reject_at.'),
  rejected: z.number().int().describe('How many findings are at or above reject_at.'),
});

export const languageInfo = z.object({
  id: z.string(),
  name: z.string(),
  version: z.string().describe('Runtime version as the sandbox runs it.'),
  file_name: z.string().describe('Name the code is stored under inside the sandbox.'),
  extensions: z.array(z.string()),
  aliases: z.array(z.string()).describe('Also accepted as `language`.'),
});

export const languagesResponse = z.object({ languages: z.array(languageInfo) });

export const languageParams = z.strictObject({ language: z.string().min(1).max(32) });

export const ruleCatalogue = z.object({
  language: z.string(),
  supported: z.literal(true),
  reject_at: z.enum(['low', 'medium', 'high', 'critical']),
  max_code_chars: z.number().int(),
  rules: z.array(
    z.object({
      id: z.string(),
      severity: z.enum(['low', 'medium', 'high', 'critical']),
      description: z.string(),
      rejects: z
        .boolean()
        .describe('Whether a finding of this rule rejects code under this server’s policy.'),
    }),
  ),
});

const check = z.object({ ok: z.boolean(), detail: z.string() });

export const healthResponse = z.object({
  status: z.enum(['ok', 'degraded']),
  checks: z.object({
    backend: check.extend({
      default: z.string(),
      backends: z.array(
        z.object({ backend: z.string(), available: z.boolean(), isolation: z.string(), detail: z.string() }),
      ),
    }),
    queue: check.extend({
      latency_ms: z.number().nullable(),
      waiting: z.number().int().nullable().describe('Executions waiting for a worker.'),
      active: z.number().int().nullable(),
      queues: z
        .record(
          z.string(),
          z.object({ waiting: z.number().int(), active: z.number().int(), delayed: z.number().int() }),
        )
        .describe('Jobs per queue: executions, validation (task-file uploads), tasks.'),
    }),
    store: check.extend({ dialect: z.string(), latency_ms: z.number().nullable() }),
    workers: check
      .extend({
        live: z.number().int().nullable().describe('Worker processes with a live heartbeat.'),
        in_process: z.boolean(),
        roles: z
          .record(z.string(), z.number().int())
          .describe('Live worker processes per role (executions, validation, tasks).'),
        processes: z.array(
          z.object({
            id: z.string(),
            host: z.string(),
            pid: z.number().int(),
            roles: z.array(z.string()),
            backend: z.string(),
            concurrency: z.number().int(),
            started_at: z.string(),
            seen_at: z.string().describe('Last heartbeat (ISO 8601); refreshed every few seconds.'),
          }),
        ),
      })
      .describe('ok when every role has at least one live worker process.'),
  }),
  pool: z
    .record(z.string(), z.number().int())
    .describe('Idle pre-started sandboxes per language (in-process workers).'),
  active_sandboxes: z.number().int(),
});

export const serviceInfo = z.object({
  name: z.string(),
  version: z.string(),
  description: z.string(),
  documentation: z.string(),
  openapi: z.string(),
  default_backend: z.string(),
  languages: z.array(z.string()),
  endpoints: z.array(z.string()),
});

// --- Task files (SPEC §6) ---

export const validationState = z
  .enum(['PENDING', 'VALIDATING', 'VALIDATED', 'REJECTED'])
  .describe(
    'PENDING: waiting for a validation worker; VALIDATING: being checked; VALIDATED: in the tasks dir, runnable with POST /tasks; REJECTED: quarantined, see reasons.',
  );

export const uploadAccepted = z.object({
  validation_id: z.string(),
  status: z.literal('PENDING'),
  title: z.string().describe('What POST /tasks names this file by: its name without the extension.'),
  file_name: z.string(),
  language: z.string(),
  poll: z.string().describe('GET this URL for the verdict.'),
});

export const validationIdParams = z.strictObject({ validation_id: z.string().min(1).max(64) });

export const resourceUsage = z.object({
  cpu_time: z.number().describe('Seconds of CPU time.'),
  peak_memory: z.number().int().describe('Bytes.'),
  wall_time: z.number().describe('Seconds of wall-clock time in the sandbox.'),
});

export const validationReport = z.object({
  warnings: z
    .array(z.string())
    .describe('Worth knowing, not worth rejecting for (e.g. the handler raised on a default probe).'),
  findings: z.array(finding).describe('Every static-analysis finding, including those below the policy.'),
  probes: z
    .array(
      z.object({
        source: z
          .enum(['sample', 'probe'])
          .describe('sample: from sample_payloads; probe: Warden’s defaults.'),
        number: z.number().int().describe('1-based within its source.'),
        ok: z.boolean(),
        preview: z.string().optional().describe('The result’s JSON, cut at 200 characters.'),
        error: z.string().optional(),
      }),
    )
    .describe('One per payload the handler was called with.'),
  usage: resourceUsage.nullable().describe('Null when the file never reached a sandbox.'),
  violations: z.array(z.object({ rule: z.string(), message: z.string() })),
  logs: z.string().describe('The end of what the task printed while being validated.'),
  validation_time: z.number().describe('Seconds.'),
});

const reportShapesAgree: Same<z.infer<typeof validationReport>, ValidationReport> = true;
void reportShapesAgree;

export const validationStatus = z.object({
  validation_id: z.string(),
  status: validationState,
  reasons: z.array(z.string()).describe('Why it was rejected; empty unless REJECTED.'),
  checked_at: z.string().nullable().describe('When the verdict was reached (ISO 8601); null before.'),
  title: z.string(),
  file_name: z.string(),
  original_filename: z.string(),
  language: z.string(),
  created_at: z.string(),
  report: validationReport.nullable().describe('Details of the validation run, once there is a verdict.'),
});

export const taskTitle = z
  .string()
  .min(1)
  .max(MAX_TASK_NAME_CHARS)
  .describe('The title of a validated task file (its upload name without the extension).');

export const taskCreateRequest = z.strictObject({
  title: taskTitle,
  payload: z.unknown().default({}).describe('JSON given to the handler as its one argument (default `{}`).'),
});

export const taskState = z
  .enum(['queued', 'running', 'succeeded', 'failed', 'error'])
  .describe(
    'succeeded: the handler returned `result`; failed: the handler raised or broke a limit (`error` says how); error: Warden could not run it (not the handler’s fault).',
  );

export const taskCreated = z.object({
  task_id: z.string(),
  status: z.literal('queued'),
  title: z.string(),
  poll: z.string().describe('GET this URL for the result.'),
});

export const notValidatedBody = errorBody.extend({
  title: z.string(),
  status: validationState.describe('The status of the latest upload under this title.'),
  validation_id: z.string(),
});

export const taskIdParams = z.strictObject({ task_id: z.string().min(1).max(64) });

export const taskRecord = z.object({
  task_id: z.string(),
  title: z.string(),
  status: taskState,
  result: z.unknown().describe('What the handler returned (JSON); null unless succeeded.'),
  error: z.string().nullable(),
  usage: resourceUsage.nullable(),
  logs: z.string().nullable().describe('The end of what the handler printed.'),
  validation_id: z.string().nullable().describe('The validated upload whose handler ran.'),
  attempts: z.number().int(),
  created_at: z.string(),
  started_at: z.string().nullable(),
  finished_at: z.string().nullable(),
});
