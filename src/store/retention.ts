import type { Kysely } from 'kysely';
import type { Database } from './schema.js';
import { deleteAuditBefore } from './audit.js';
import { deleteExecutionsBefore } from './executions.js';
import { deleteUploadsBefore } from './task-files.js';
import { deleteTasksBefore } from './tasks.js';
import { deleteHooksBefore } from './webhooks.js';

/**
 * Expiry of stored work (`store.retention`): one periodic sweep for every table that grows with use,
 * so the database stays bounded however many requests arrive. A table joins by adding its
 * delete-older-than function to SWEEPS; `windows` gives a table a retention of its own (the audit
 * log keeps `store.auditRetention`, longer than the work it describes).
 */

type Sweep = (db: Kysely<Database>, before: string) => Promise<number>;

const SWEEPS: Record<string, Sweep> = {
  executions: deleteExecutionsBefore,
  tasks: deleteTasksBefore,
  task_files: deleteUploadsBefore,
  webhooks: deleteHooksBefore,
  audit_log: deleteAuditBefore,
};

/** Retention per table where it differs from `store.retention` (ms). */
export type RetentionWindows = Partial<Record<keyof typeof SWEEPS, number>>;

/** Deletes what was created more than `retentionMs` before `now`; rows deleted per table. */
export async function sweepExpired(
  db: Kysely<Database>,
  retentionMs: number,
  now = Date.now(),
  windows: RetentionWindows = {},
): Promise<Record<string, number>> {
  const deleted: Record<string, number> = {};
  for (const [table, sweep] of Object.entries(SWEEPS)) {
    const before = new Date(now - (windows[table] ?? retentionMs)).toISOString();
    deleted[table] = await sweep(db, before);
  }
  return deleted;
}

/** Sweeps often enough that nothing outlives its retention by more than a tenth of it (at most hourly). */
export function sweepIntervalMs(retentionMs: number): number {
  return Math.max(1000, Math.min(3_600_000, Math.floor(retentionMs / 10)));
}

export interface RetentionSweeper {
  /** Stops the timer and waits for a sweep under way. */
  stop(): Promise<void>;
}

/** Sweeps now, then every sweepIntervalMs; failures (the store is down) are reported and retried later. */
export function startRetentionSweeper(
  db: Kysely<Database>,
  retentionMs: number,
  report: { onSwept?(deleted: Record<string, number>): void; onError(err: Error): void },
  windows: RetentionWindows = {},
): RetentionSweeper {
  let running: Promise<void> | undefined;
  const sweep = () => {
    running ??= sweepExpired(db, retentionMs, Date.now(), windows)
      .then((deleted) => report.onSwept?.(deleted))
      .catch((err: Error) => report.onError(err))
      .finally(() => {
        running = undefined;
      });
  };
  sweep();
  const timer = setInterval(sweep, sweepIntervalMs(retentionMs));
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
