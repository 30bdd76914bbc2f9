import { z } from 'zod';
import { JOB_STATES } from '../../store/jobs-schema.js';
import { callbackUrl } from '../../webhooks/schema.js';

/** The jobs API (SPEC §7) as zod schemas; quantities and paths are checked further in src/jobs/spec.ts. */

export const jobState = z
  .enum(JOB_STATES)
  .describe('queued → preparing → running → collecting → completed | failed | timeout | cancelled | error');

export const jobCreateRequest = z.strictObject({
  command: z
    .string()
    .min(1)
    .max(64 * 1024)
    .describe(
      'A command line, split into arguments as a shell would but run without one: no pipes, redirections, globs or variables. Its program must be on the server’s allow-list (`jobs.allowedCommands`).',
    ),
  environment: z
    .record(z.string(), z.string())
    .default({})
    .describe(
      'Variables added to the sandbox’s clean environment (PATH, LD_*, PYTHON*, NODE_OPTIONS and the like are refused).',
    ),
  timeout: z
    .number()
    .positive()
    .optional()
    .describe('Seconds of wall-clock time; clamped to the server’s ceiling.'),
  resources: z
    .strictObject({
      cpu: z
        .union([z.string().max(32), z.number().positive()])
        .optional()
        .describe('Cores: "0.5" = half a core, or millicores: "500m".'),
      memory: z
        .string()
        .max(32)
        .optional()
        .describe('Kubernetes notation: "512Mi", "1Gi", "500M", plain bytes.'),
      disk: z
        .string()
        .max(32)
        .optional()
        .describe('Size of each writable area (/box, /tmp, /out), e.g. "1Gi".'),
    })
    .default({}),
  network: z
    .strictObject({
      outbound: z.boolean().default(false).describe('false (default): no network at all.'),
      allowed_hosts: z
        .array(z.string().min(1).max(253))
        .max(64)
        .default([])
        .describe('With outbound: the only hosts reachable, exact names or "*.suffix" wildcards.'),
      blocked_ports: z.array(z.number().int().min(1).max(65_535)).max(256).default([]),
    })
    .default({ outbound: false, allowed_hosts: [], blocked_ports: [] }),
  files: z
    .array(
      z.strictObject({
        path: z.string().min(1).max(1024).describe('Relative to the working dir /box.'),
        content: z.string().describe('base64'),
        mode: z
          .union([z.number().int().min(0).max(0o777), z.string().max(4)])
          .optional()
          .describe('Permission bits, e.g. 493 or "0755" (any x bit makes it executable).'),
      }),
    )
    .default([]),
  callback_url: callbackUrl,
});

export type JobCreateRequest = z.infer<typeof jobCreateRequest>;

export const jobAccepted = z.object({
  id: z.string(),
  status: jobState,
  poll: z.string().describe('GET this for the job’s state.'),
  logs: z.string().describe('GET this for the live log (Server-Sent Events).'),
});

export const jobIdParams = z.strictObject({ id: z.string().min(1).max(64) });

const artifact = z.object({
  path: z.string().describe('Relative to /out.'),
  size: z.number().int().describe('Bytes.'),
  sha256: z.string(),
});

export const skippedOutput = z.object({
  path: z.string(),
  reason: z
    .enum([
      'symlink',
      'hardlink',
      'fifo',
      'socket',
      'device',
      'too_large',
      'too_many',
      'too_deep',
      'unreadable',
      'invalid_name',
    ])
    .describe('Why this entry of /out was not collected.'),
});

export const jobRecord = z.object({
  id: z.string(),
  status: jobState,
  command: z.string(),
  argv: z.array(z.string()).describe('What ran (the program resolved to its absolute path).'),
  environment: z.array(z.string()).describe('Names of the variables set (values are not echoed).'),
  timeout: z.number().describe('Seconds.'),
  resources: z.object({
    cpu: z.number().describe('Cores.'),
    memory: z.number().int().describe('Bytes.'),
    disk: z.number().int().describe('Bytes.'),
  }),
  network: z.object({
    outbound: z.boolean(),
    allowed_hosts: z.array(z.string()),
    blocked_ports: z.array(z.number().int()),
  }),
  verdict: z
    .string()
    .nullable()
    .describe('The sandbox’s verdict (success, failed, timeout, memory_limit_exceeded, …).'),
  exit_code: z.number().int().nullable(),
  signal: z.string().nullable(),
  error: z.string().nullable().describe('Why the job did not complete, when it did not.'),
  usage: z
    .object({
      cpu_time: z.number().describe('Seconds.'),
      peak_memory: z.number().int().describe('Bytes.'),
      wall_time: z.number().describe('Seconds.'),
    })
    .nullable(),
  violations: z.array(z.object({ rule: z.string(), message: z.string(), syscall: z.string().optional() })),
  artifacts: z
    .array(artifact)
    .describe('Files collected from /out; GET /jobs/{id}/artifacts gives download URLs.'),
  skipped: z.array(skippedOutput),
  attempts: z.number().int(),
  cancel_requested: z.boolean(),
  created_at: z.string(),
  preparing_at: z.string().nullable(),
  running_at: z.string().nullable(),
  collecting_at: z.string().nullable(),
  finished_at: z.string().nullable(),
  logs: z.string().describe('Where the log is (Server-Sent Events; `?format=text` for plain text).'),
});

export const jobListQuery = z.strictObject({
  status: jobState.optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().max(200).optional().describe('`next_cursor` of the previous page.'),
});

export const jobList = z.object({
  jobs: z.array(
    z.object({
      id: z.string(),
      status: jobState,
      command: z.string(),
      exit_code: z.number().int().nullable(),
      created_at: z.string(),
      finished_at: z.string().nullable(),
    }),
  ),
  next_cursor: z.string().nullable().describe('Pass as `cursor` for older jobs; null on the last page.'),
});

export const jobCancelled = z.object({
  id: z.string(),
  status: jobState,
  cancel_requested: z.boolean(),
});

export const logQuery = z.strictObject({
  format: z.enum(['sse', 'text']).default('sse'),
  last_event_id: z.coerce.number().int().min(0).optional().describe('Same as the Last-Event-ID header.'),
});

export const artifactLinks = z.array(
  artifact.extend({
    url: z.string().describe('Signed download URL; refused with 403 once expired or altered.'),
    expires_at: z.string(),
  }),
);
