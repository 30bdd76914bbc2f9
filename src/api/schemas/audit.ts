import { z } from 'zod';
import { AUDIT_ACTIONS } from '../../store/audit.js';

/** GET /audit: the audit log, newest first, filtered and paged by an opaque cursor. */

export const MAX_AUDIT_PAGE = 500;

const instant = z.iso
  .datetime({ offset: true })
  .transform((s) => new Date(s).toISOString())
  .describe('ISO 8601 with a time zone, e.g. 2026-11-29T14:00:00Z.');

export const auditQuery = z.strictObject({
  tenant: z.string().min(1).max(128).optional().describe('Only this tenant’s records.'),
  action: z.enum(AUDIT_ACTIONS).optional().describe('Only this action.'),
  from: instant.optional().describe('Records at or after this time (ISO 8601).'),
  to: instant.optional().describe('Records before this time (ISO 8601).'),
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(MAX_AUDIT_PAGE)
    .default(100)
    .describe(`Records per page, 1 to ${MAX_AUDIT_PAGE}.`),
  cursor: z
    .string()
    .min(1)
    .max(200)
    .optional()
    .describe('`next_cursor` of the previous page, with the same filters.'),
});

const detail = z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(z.string())]);

export const auditRecord = z.object({
  id: z.number().int().describe('Increasing in the order records were written.'),
  at: z.string().describe('ISO 8601.'),
  tenant: z.string().nullable().describe('The tenant the action was for; null for the service itself.'),
  actor: z.string().describe('Who did it: an API key id, the tenant, `cli`, or `warden` (a worker).'),
  action: z.enum(AUDIT_ACTIONS),
  target: z.string().nullable().describe('The request, job, task, validation or key id.'),
  outcome: z.string().describe('What came of it: a verdict, a status, `refused`, `ok`.'),
  details: z
    .record(z.string(), detail)
    .describe('Hashes, rule ids, reasons: never code, payloads, environment values or keys.'),
});

export const auditPage = z.object({
  records: z.array(auditRecord),
  next_cursor: z.string().nullable().describe('Pass as `cursor` for the next (older) page; null at the end.'),
});
