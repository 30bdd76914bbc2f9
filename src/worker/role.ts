import type { Job } from 'bullmq';
import type { Logger } from 'pino';
import type { WardenConfig } from '../config/schema.js';
import type { Metrics } from '../metrics.js';
import type { WorkerRole } from '../queue/heartbeats.js';
import type { Engine } from '../sandbox/engine.js';
import type { AuditLog } from '../store/audit.js';
import type { Store } from '../store/db.js';
import type { HookNotifier } from '../webhooks/notify.js';

/** What every role of a worker process shares: one engine (and its pool), one store, one logger. */
export interface WorkerContext {
  config: WardenConfig & { queue: { redisUrl: string } };
  engine: Engine;
  store: Store;
  audit: AuditLog;
  metrics: Metrics;
  logger: Logger;
  /** Where a resource becomes final, this queues its callback (if it has one). */
  webhooks: HookNotifier;
}

/** One kind of work a worker process takes from one queue. */
export interface Role {
  name: WorkerRole | 'webhooks';
  queue: string;
  /** `token`: the worker's lock on the job (to put it back, delayed, without finishing it). */
  process(job: Job<unknown>, token?: string): Promise<unknown>;
  /**
   * A job whose worker stops renewing its lock for this long goes to another worker. Unset: BullMQ's
   * default, for executions, whose requests a client waits on and which are never run twice.
   */
  lockMs?: number;
  maxStalledCount?: number;
  /** How long close() lets running jobs finish. */
  graceMs: number;
  /** Called when close() begins, before the grace: a role may cut long work short (jobs do). */
  stopping?(): void;
  /** Finds work that lost its job (run at start, then every recoveryIntervalMs). */
  recover?(): Promise<void>;
}
