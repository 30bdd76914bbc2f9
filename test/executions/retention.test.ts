import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import {
  claimExecution,
  getExecution,
  insertExecution,
  planCases,
  recordCase,
} from '../../src/store/executions.js';
import { sweepExpired, sweepIntervalMs } from '../../src/store/retention.js';
import { STORE_DIALECTS, useStore } from '../helpers/stores.js';

const DAY = 86_400_000;

describe('store.retention', () => {
  const parse = (retention: unknown) => configSchema.parse({ store: { retention } }).store.retention;

  it('takes milliseconds or a duration, 7 days by default', () => {
    expect(configSchema.parse({}).store.retention).toBe(7 * DAY);
    expect(parse('7d')).toBe(7 * DAY);
    expect(parse('12h')).toBe(12 * 3_600_000);
    expect(parse('30m')).toBe(1_800_000);
    expect(parse('90s')).toBe(90_000);
    expect(parse('500ms')).toBe(500);
    expect(parse(3_600_000)).toBe(3_600_000);
    for (const bad of ['7 days', '-1d', '0.5d', 0, -5, '', 'forever']) {
      const result = configSchema.safeParse({ store: { retention: bad } });
      expect(result.success, String(bad)).toBe(false);
      expect(result.error?.issues[0]?.path.join('.'), String(bad)).toBe('store.retention');
    }
  });

  it('sweeps at a tenth of the retention, between a second and an hour', () => {
    expect(sweepIntervalMs(7 * DAY)).toBe(3_600_000);
    expect(sweepIntervalMs(60_000)).toBe(6000);
    expect(sweepIntervalMs(500)).toBe(1000);
  });
});

describe.each(STORE_DIALECTS)('the retention sweep on %s', (dialect) => {
  const store = useStore(dialect);

  it('deletes executions and their case rows older than the retention, and nothing newer', async () => {
    const old = `old-${process.pid}`;
    const fresh = `fresh-${process.pid}`;
    for (const id of [old, fresh]) {
      await insertExecution(store.db, {
        tenant: 'default',
        requestId: id,
        language: 'python',
        backend: null,
        request: {},
      });
      await claimExecution(store.db, id, 't');
      await planCases(store.db, id, 't', 2);
      await recordCase(store.db, id, 't', 0, { stdout: 'x' });
    }
    const cases = async (id: string) =>
      (await store.db.selectFrom('execution_cases').select('idx').where('request_id', '=', id).execute())
        .length;
    // The clock moves 7 days on: `old` is past its retention; `fresh` is made younger than that.
    const later = Date.now() + 7 * DAY;
    await store.db
      .updateTable('executions')
      .set({ created_at: new Date(later - 60_000).toISOString() })
      .where('request_id', '=', fresh)
      .execute();
    await store.db
      .updateTable('execution_cases')
      .set({ created_at: new Date(later - 60_000).toISOString() })
      .where('request_id', '=', fresh)
      .execute();

    const deleted = await sweepExpired(store.db, 7 * DAY, later);
    expect(deleted.executions).toBeGreaterThanOrEqual(1);
    expect(await getExecution(store.db, old)).toBeUndefined();
    expect(await cases(old)).toBe(0);
    expect(await getExecution(store.db, fresh)).toBeDefined();
    expect(await cases(fresh)).toBe(1);
    expect((await sweepExpired(store.db, 7 * DAY, later)).executions).toBe(0);
  });
});
