import { z } from 'zod';
import type { WardenConfig } from '../config/schema.js';
import { MAX_TASK_NAME_CHARS, type ValidationReport } from '../pipeline/index.js';
import { executeRequest, executeResponse, type ExecuteRequestBody } from '../runner/contract.js';
import { callbackUrl } from '../webhooks/schema.js';

/**
 * Every edge of the HTTP API as zod schemas: Fastify validates requests and serialises responses
 * with them, and /docs (OpenAPI) is generated from them. Units are stated where a number is one.
 */

// The execution request and response are the runner's contract; the API serves them as they are.
export { executeRequest, executeResponse };
export type { ExecuteRequestBody };

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

export const finding = z.object({
  rule: z.string().describe('Rule id, see GET /languages/{language}/validate.'),
  severity: z.enum(['low', 'medium', 'high', 'critical']),
  message: z.string(),
  line: z.number().int().describe('1-based.'),
  column: z.number().int().describe('1-based, in UTF-16 code units.'),
});

export const executeQuery = z.strictObject({
  wait: z
    .enum(['true', 'false'])
    .default('true')
    .describe('false: answer 202 with the request_id at once and poll GET /executions/{request_id}.'),
});

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

const analysisProfile = z
  .enum(['strict', 'standard', 'off'])
  .describe('strict: dangerous imports reject too; standard: only dangerous uses reject; off: report only.');

export const validateResponse = z.object({
  safe: z.boolean().describe('No finding rejects the code under the active profile: it would be run.'),
  language: z.string(),
  profile: analysisProfile,
  reject_at: z
    .enum(['low', 'medium', 'high', 'critical'])
    .describe('Findings at or above this severity reject code.'),
  violations: z
    .array(finding)
    .describe('Every finding, sorted by position, including those below reject_at.'),
  rejected: z.number().int().describe('How many findings reject the code under the active profile.'),
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
  profile: analysisProfile,
  reject_at: z.enum(['low', 'medium', 'high', 'critical']),
  max_code_chars: z.number().int(),
  rules: z.array(
    z.object({
      id: z.string(),
      severity: z.enum(['low', 'medium', 'high', 'critical']),
      description: z.string(),
      action: z
        .enum(['reject', 'warn'])
        .describe('What a finding of this rule does under the active profile and reject_at.'),
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
  auth: z
    .object({ mode: z.enum(['keys', 'none']), detail: z.string() })
    .describe('How callers are authenticated: `none` (loopback only) or API keys.'),
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

// The pipeline builds reports as plain objects; keep both definitions in step.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never;
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
  callback_url: callbackUrl,
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
