import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { codeHash, listAudit, openAuditLog, writeAudit, type AuditEvent } from '../../src/store/audit.js';
import { sweepExpired } from '../../src/store/retention.js';
import { STORE_DIALECTS, useStore } from '../helpers/stores.js';

/** The audit table itself, on SQLite and PostgreSQL: append-only, batched writes, filters, pages, expiry. */

const event = (over: Partial<AuditEvent> = {}): AuditEvent => ({
  tenant: 'acme',
  actor: 'acme',
  action: 'code.submitted',
  target: 'req-1',
  outcome: 'success',
  details: { sha256: codeHash('print(1)'), language: 'python' },
  ...over,
});

describe.each(STORE_DIALECTS)('audit log on %s', (dialect) => {
  const store = useStore(dialect);

  it('refuses to rewrite a record: an UPDATE fails in the database itself', async () => {
    await writeAudit(store.db, [event({ target: 'immutable' })]);
    const update = sql`update audit_log set outcome = 'forged' where target = 'immutable'`;
    await expect(update.execute(store.db)).rejects.toThrow(/append-only/);
    const { records } = await listAudit(store.db, { limit: 10 });
    expect(records.find((r) => r.target === 'immutable')?.outcome).toBe('success');
  });

  it('writes recorded events in order, in batches, and close() writes what is left', async () => {
    const log = openAuditLog(store.db, { flushMs: 60_000, maxBatch: 1000 });
    for (let i = 0; i < 25; i++) log.record(event({ tenant: 'batch', target: `b-${i}` }));
    // Nothing is written before the batch is due: record() did not wait for the store.
    expect((await listAudit(store.db, { tenant: 'batch', limit: 100 })).records).toHaveLength(0);
    await log.close();
    const { records } = await listAudit(store.db, { tenant: 'batch', limit: 100, order: 'asc' });
    expect(records.map((r) => r.target)).toEqual(Array.from({ length: 25 }, (_, i) => `b-${i}`));
    // Recorded after close: written at once.
    log.record(event({ tenant: 'batch', target: 'late' }));
    await log.flush();
    expect((await listAudit(store.db, { tenant: 'batch', limit: 100 })).records[0]?.target).toBe('late');
  });

  it('filters by tenant, action and time, and pages newest first without gaps or repeats', async () => {
    const t0 = Date.parse('2026-01-01T00:00:00Z');
    await writeAudit(
      store.db,
      Array.from({ length: 30 }, (_, i) => ({
        ...event({
          tenant: i % 2 === 0 ? 'even' : 'odd',
          action: i % 3 === 0 ? 'job.created' : 'code.submitted',
          target: `p-${i}`,
        }),
        at: new Date(t0 + i * 60_000).toISOString(),
      })),
    );
    const seen: string[] = [];
    let cursor: number | undefined;
    do {
      const page = await listAudit(store.db, { tenant: 'even', limit: 4, cursor });
      seen.push(...page.records.map((r) => r.target ?? ''));
      cursor = page.next ?? undefined;
    } while (cursor !== undefined);
    expect(seen).toEqual(Array.from({ length: 15 }, (_, i) => `p-${28 - 2 * i}`));

    const jobs = await listAudit(store.db, { tenant: 'even', action: 'job.created', limit: 100 });
    expect(jobs.records.map((r) => r.target)).toEqual(['p-24', 'p-18', 'p-12', 'p-6', 'p-0']);

    const window = await listAudit(store.db, {
      from: new Date(t0 + 10 * 60_000).toISOString(),
      to: new Date(t0 + 13 * 60_000).toISOString(),
      limit: 100,
    });
    expect(window.records.map((r) => r.target)).toEqual(['p-12', 'p-11', 'p-10']);
  });

  it('keeps long strings bounded and expires rows past store.auditRetention only', async () => {
    await writeAudit(store.db, [
      {
        ...event({ tenant: 'old', details: { reasons: ['x'.repeat(5000)] } }),
        at: '2020-01-01T00:00:00.000Z',
      },
    ]);
    const [old] = (await listAudit(store.db, { tenant: 'old', limit: 1 })).records;
    expect((old?.details.reasons as string[])[0]!.length).toBeLessThanOrEqual(512);

    const day = 86_400_000;
    const now = Date.parse('2020-01-05T00:00:00Z');
    // store.retention (1 day) would remove it; the audit log's own window (30 days) keeps it.
    expect((await sweepExpired(store.db, day, now, { audit_log: 30 * day })).audit_log).toBe(0);
    expect((await sweepExpired(store.db, day, now, { audit_log: 2 * day })).audit_log).toBe(1);
    expect((await listAudit(store.db, { tenant: 'old', limit: 1 })).records).toHaveLength(0);
  });
});
