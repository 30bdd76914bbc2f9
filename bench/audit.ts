import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { executionEvents } from '../src/audit/events.js';
import { configSchema } from '../src/config/schema.js';
import type { RunningServer } from '../src/server.js';
import { openAuditLog, writeAudit, type AuditLog } from '../src/store/audit.js';
import { openStore } from '../src/store/db.js';
import type { ExecutionResponse } from '../src/runner/index.js';
import { executePrint1 } from './api.js';
import { withBenchServer } from './server.js';
import { round, summary, timed } from './stats.js';

/**
 * What the audit log costs. On the request's path: building an execution's events (sha256 of its
 * code) and queueing them. Off it: the batched insert. End to end: POST /execute on a server with the
 * audit log against one whose audit log discards everything, interleaved in the same run.
 */

const discard: AuditLog = { record() {}, flush: async () => {}, close: async () => {} };

const execute = (server: RunningServer) => executePrint1(server.url);

async function pathAndInsert(): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-bench-audit-'));
  const store = await openStore(configSchema.parse({ dataDir: dir }));
  try {
    const code = 'print(1)\n'.repeat(200); // 1.8 KB
    const response = { status: 'success', security_violations: [] } as unknown as ExecutionResponse;
    const held = openAuditLog(store.db, { flushMs: 3_600_000, maxBatch: 1e9, maxPending: 1e9 });
    const n = 20_000;
    const [pathMs] = await timed(async () => {
      for (let i = 0; i < n; i++) {
        const execution = {
          requestId: `r${i}`,
          tenant: 't',
          apiKeyId: null,
          request: { language: 'python', code },
        };
        for (const event of executionEvents(execution, response)) held.record(event);
      }
    });
    const batches: number[] = [];
    const rows = Array.from({ length: 200 }, (_, i) => ({
      tenant: 't',
      actor: 't',
      action: 'code.submitted' as const,
      target: `r${i}`,
      outcome: 'success',
      details: { sha256: 'a'.repeat(64), language: 'python' },
    }));
    for (let i = 0; i < 30; i++) batches.push((await timed(() => writeAudit(store.db, rows)))[0]);
    await held.close();
    return {
      path_us_per_execution: round((pathMs * 1000) / n),
      insert_ms_per_200_rows: summary(batches),
    };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchAudit(options: { rounds?: number } = {}): Promise<Record<string, unknown>> {
  const rounds = options.rounds ?? 6;
  const micro = await pathAndInsert();
  const endToEnd = await withBenchServer('audit-on', (on) =>
    withBenchServer(
      'audit-off',
      async (off) => {
        for (let i = 0; i < 5; i++) await Promise.all([execute(on), execute(off)]);
        const withMs: number[] = [];
        const withoutMs: number[] = [];
        // Alternating blocks of ten, so a busy moment of the machine hits both alike.
        for (let r = 0; r < rounds; r++) {
          for (let i = 0; i < 10; i++) withMs.push((await timed(() => execute(on)))[0]);
          for (let i = 0; i < 10; i++) withoutMs.push((await timed(() => execute(off)))[0]);
        }
        return { execute_ms_with_audit: summary(withMs), execute_ms_without_audit: summary(withoutMs) };
      },
      { audit: discard },
    ),
  );
  return { ...micro, ...endToEnd };
}
