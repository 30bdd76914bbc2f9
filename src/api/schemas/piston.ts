import { z } from 'zod';

/**
 * Piston's v2 API (engineer-man/piston, api/src/api/v2.js) as zod schemas. Unknown fields are ignored
 * as Piston ignores them. Messages follow Piston's; `{field}` becomes the field's path as Piston
 * writes it (`files[0].content`), see routes/piston.ts.
 */

const requiredString = '{field} is required as a string';
const optionalNumber = 'If specified, {field} must be a number';

/** Milliseconds (timeouts) or bytes (memory); 0 or null means the default, as in Piston. */
const limit = (what: string) => z.number({ error: optionalNumber }).nullable().optional().describe(what);

export const pistonFile = z.object({
  name: z
    .string({ error: 'If specified, {field} must be a string' })
    .max(255)
    .optional()
    .describe('File name; the first utf8 file is the entry. Default `file<i>.code`.'),
  content: z.string({ error: requiredString }),
  encoding: z
    .string({ error: 'If specified, {field} must be a string' })
    .optional()
    .describe('`utf8` (default), `base64` or `hex`; anything else is read as utf8, as Piston does.'),
});

export type PistonFile = z.infer<typeof pistonFile>;

export const pistonExecuteRequest = z.object({
  language: z.string({ error: requiredString }).min(1, requiredString).max(64),
  version: z
    .string({ error: requiredString })
    .min(1, requiredString)
    .max(64)
    .describe('A semver range: `*`, `3.x`, `>=20`, or an exact version from /api/v2/runtimes.'),
  files: z
    .array(pistonFile, { error: '{field} is required as an array' })
    .max(100, '{field} can hold at most 100 files'),
  stdin: z
    .string({ error: 'If specified, {field} must be a string' })
    .optional()
    .describe('A newline is added when it does not end with one, as Piston does.'),
  args: z
    .array(z.union([z.string(), z.number(), z.boolean()]), {
      error: 'If specified, {field} must be an array of strings',
    })
    .max(1000, '{field} can hold at most 1000 arguments')
    .optional()
    .describe('Arguments after the entry file.'),
  compile_timeout: limit('ms; accepted, see the README (Warden compiles on the host)'),
  run_timeout: limit('ms of wall time (and CPU time) for the run; clamped to sandbox.maxLimits'),
  compile_cpu_time: limit('ms; accepted, see the README'),
  run_cpu_time: limit('ms of CPU time for the run (default: as run_timeout); clamped to sandbox.maxLimits'),
  compile_memory_limit: limit('bytes; accepted, see the README'),
  run_memory_limit: limit('bytes for the run; -1 means no limit (sandbox.maxLimits); clamped to it'),
});

export type PistonExecuteRequest = z.infer<typeof pistonExecuteRequest>;

export const pistonStage = z.object({
  stdout: z.string(),
  stderr: z.string(),
  output: z.string().describe('stdout, then stderr (Warden does not keep their interleaving).'),
  code: z.number().int().nullable().describe('Exit code, or null when a signal ended the process.'),
  signal: z.string().nullable().describe('e.g. SIGKILL, or null.'),
  message: z.string().nullable().describe('Why it did not succeed, isolate-style; with Warden’s reason.'),
  status: z
    .string()
    .nullable()
    .describe(
      'null on success; RE (exit status), SG (signal), TO (time), OL/EL (stdout/stderr limit), XX (Warden).',
    ),
  cpu_time: z.number().nullable().describe('ms'),
  wall_time: z.number().nullable().describe('ms'),
  memory: z.number().nullable().describe('bytes (peak)'),
});

export type PistonStage = z.infer<typeof pistonStage>;

export const pistonExecuteResponse = z.object({
  language: z.string(),
  version: z.string(),
  run: pistonStage,
  compile: pistonStage.optional().describe('TypeScript only: transpile and type check.'),
});

export type PistonExecuteResponse = z.infer<typeof pistonExecuteResponse>;

export const pistonRuntimes = z.array(
  z.object({
    language: z.string(),
    version: z.string(),
    aliases: z.array(z.string()),
    runtime: z.string().optional(),
  }),
);

export const pistonError = z.object({ message: z.string() }).describe('Piston’s error shape.');
