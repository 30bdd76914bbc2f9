import type { FastifyRequest } from 'fastify';
import { requestTenant } from '../api/tenant.js';
import type { ExecutionRequest, ExecutionResponse } from '../runner/index.js';
import type { Violation } from '../sandbox/types.js';
import { codeHash, type AuditEvent } from '../store/audit.js';

/**
 * Audit events as the parts of Warden that see them build them: one place decides what a row says,
 * so no caller can put the code, a payload or an environment value into one by accident.
 */

/** Where an event comes from when no person or key did it (a worker's own decision). */
export const SYSTEM_ACTOR = 'warden';

/** Who is acting in a request: its API key's id, or the tenant where there are no keys (auth.mode none). */
export function requestActor(req: FastifyRequest): string {
  return req.auth?.keyId ?? requestTenant(req);
}

/**
 * A finished execution: `code.submitted` (hash, language, verdict), and `code.rejected` (the rules)
 * when static analysis refused it, or `code.violation` (the system calls) when the sandbox caught
 * something at run time.
 */
export function executionEvents(
  execution: { requestId: string; tenant: string | null; apiKeyId: string | null; request: unknown },
  response: ExecutionResponse,
): AuditEvent[] {
  const req = execution.request as ExecutionRequest;
  const base = {
    tenant: execution.tenant,
    actor: execution.apiKeyId ?? execution.tenant ?? SYSTEM_ACTOR,
    target: execution.requestId,
  };
  const code = { sha256: codeHash(req.code), language: req.language };
  const events: AuditEvent[] = [
    {
      ...base,
      action: 'code.submitted',
      outcome: response.status,
      details: { ...code, test_cases: req.test_cases?.length ?? 0 },
    },
  ];
  const rules = (source: 'static' | 'runtime') => [
    ...new Set(response.security_violations.filter((v) => v.source === source).map((v) => v.rule)),
  ];
  const rejected = rules('static');
  if (rejected.length > 0)
    events.push({
      ...base,
      action: 'code.rejected',
      outcome: 'rejected',
      details: { ...code, rules: rejected },
    });
  const runtime = response.security_violations.filter((v) => v.source === 'runtime');
  if (runtime.length > 0) {
    events.push({
      ...base,
      action: 'code.violation',
      outcome: response.status,
      details: { ...code, rules: rules('runtime'), messages: runtime.map((v) => v.message) },
    });
  }
  return events;
}

/** A job's run caught a forbidden action (a system call): `code.violation` on the job. */
export function jobViolationEvent(
  job: { id: string; owner: string },
  violations: readonly Violation[],
): AuditEvent | undefined {
  if (violations.length === 0) return undefined;
  return {
    tenant: job.owner,
    actor: job.owner,
    action: 'code.violation',
    target: job.id,
    outcome: 'failed',
    details: {
      kind: 'job',
      rules: [...new Set(violations.map((v) => v.rule))],
      syscalls: [...new Set(violations.flatMap((v) => (v.syscall ? [v.syscall] : [])))],
    },
  };
}

/** A task file's validation ended: promoted into the tasks dir, or quarantined with its reasons. */
export function validationEvent(
  upload: { validationId: string; owner: string; title: string; fileName: string; sha256: string },
  verdict: 'VALIDATED' | 'REJECTED',
  reasons: readonly string[],
): AuditEvent {
  return {
    tenant: upload.owner,
    actor: upload.owner,
    action: verdict === 'VALIDATED' ? 'task_file.validated' : 'task_file.quarantined',
    target: upload.validationId,
    outcome: verdict,
    details: {
      title: upload.title,
      file_name: upload.fileName,
      sha256: upload.sha256,
      reasons: [...reasons],
    },
  };
}

/**
 * An API key created or revoked (`warden keys`, /admin/keys): its id, tenant, scopes and expiry —
 * never the key. `actor`: requestActor(req) on the API, `cli` on the command line.
 */
export function keyEvent(
  action: 'key.created' | 'key.revoked',
  key: { id: string; tenant: string; scopes: readonly string[]; expiresAt: string | null },
  actor: string,
): AuditEvent {
  return {
    tenant: key.tenant,
    actor,
    action,
    target: key.id,
    outcome: 'ok',
    details: { scopes: [...key.scopes], expires_at: key.expiresAt },
  };
}
