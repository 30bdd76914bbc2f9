import { z } from 'zod';
import { verdict } from '../../runner/contract.js';
import { executionState, resourceUsage, validationState } from '../schemas.js';

/** The newest-first lists of GET /executions and GET /tasks/files. */

export const pageQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().max(200).optional().describe('`next_cursor` of the previous page.'),
});

const nextCursor = z
  .string()
  .nullable()
  .describe('Pass as `cursor` for the next (older) page; null on the last one.');

export const executionList = z.object({
  executions: z.array(
    z.object({
      request_id: z.string(),
      language: z.string(),
      backend: z.string().nullable(),
      status: executionState,
      verdict: verdict.nullable().describe('The response’s `status` once done, else null.'),
      resource_usage: resourceUsage.nullable().describe('The response’s `resource_usage` once done.'),
      has_security_violations: z.boolean(),
      created_at: z.string().describe('ISO 8601.'),
      finished_at: z.string().nullable(),
      poll: z.string().describe('GET this for the whole response.'),
    }),
  ),
  next_cursor: nextCursor,
});

export const taskFileList = z.object({
  task_files: z.array(
    z.object({
      validation_id: z.string(),
      title: z.string(),
      file_name: z.string(),
      original_filename: z.string(),
      language: z.string(),
      status: validationState,
      reasons: z.array(z.string()).describe('Why it was rejected; empty until there is a verdict.'),
      created_at: z.string().describe('ISO 8601.'),
      checked_at: z.string().nullable(),
      poll: z.string().describe('GET this for the verdict with its report.'),
    }),
  ),
  next_cursor: nextCursor,
});
