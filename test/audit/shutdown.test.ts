import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { startServer } from '../../src/server.js';
import { listAudit, openAuditLog, type AuditEvent } from '../../src/store/audit.js';
import { openStore } from '../../src/store/db.js';
import { call, testConfig } from '../helpers/server.js';

/** A clean shutdown loses no audit event: written before the store closes, or to the log as a last resort. */

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-audit-shutdown-'));
  dirs.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('audit log at shutdown', () => {
  it('writes the events of the last requests when the server stops right after them', async () => {
    const dir = tempDir();
    // Batches every minute: only close() can have written the row by the time the server is down.
    const config = testConfig(dir, { store: { auditFlushMs: 60_000 } });
    const server = await startServer(config);
    const res = await call<{ request_id: string; status: string }>(server.url, 'POST', '/execute', {
      language: 'python',
      code: 'print("last")',
    });
    expect(res.body.status).toBe('success');
    await server.close();
    const store = await openStore(config);
    try {
      const { records } = await listAudit(store.db, { action: 'code.submitted', limit: 10 });
      expect(records.map((r) => r.target)).toContain(res.body.request_id);
    } finally {
      await store.close();
    }
  });

  it('puts events the store refuses at shutdown into the log, whole', async () => {
    const store = await openStore(testConfig(tempDir()));
    const lines: { audit?: AuditEvent; msg: string }[] = [];
    const logger = pino({ level: 'error' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const log = openAuditLog(store.db, { logger, flushMs: 60_000 });
    await store.close(); // the store goes away before the log is closed
    log.record({ tenant: 't', actor: 'a', action: 'job.created', target: 'j-lost', outcome: 'queued' });
    await log.close();
    expect(lines).toEqual([
      expect.objectContaining({
        msg: expect.stringMatching(/^audit event not stored/),
        audit: expect.objectContaining({ action: 'job.created', target: 'j-lost', tenant: 't' }),
      }),
    ]);
  });
});
