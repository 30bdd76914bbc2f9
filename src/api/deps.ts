import type { Logger } from 'pino';
import type { ArtifactStore } from '../artifacts/index.js';
import type { WardenConfig } from '../config/schema.js';
import type { Metrics } from '../metrics.js';
import type { ExecutionQueue } from '../queue/executions.js';
import type { Heartbeats } from '../queue/heartbeats.js';
import type { TaskQueue } from '../queue/tasks.js';
import type { ValidationQueue } from '../queue/validations.js';
import type { BackendProbe } from '../sandbox/types.js';
import type { AuditLog } from '../store/audit.js';
import type { Store } from '../store/db.js';

/** What the HTTP layer is given; it validates, enqueues and answers, and never runs code itself. */
export interface AppDeps {
  config: WardenConfig;
  store: Store;
  /** Who did what (GET /audit); record() never waits. */
  audit: AuditLog;
  queue: ExecutionQueue;
  /** Uploaded task files waiting for a validation worker. */
  validations: ValidationQueue;
  /** Tasks waiting for a task worker. */
  tasks: TaskQueue;
  /** Which worker processes are alive, by role (/health). */
  heartbeats: Pick<Heartbeats, 'live'>;
  metrics: Metrics;
  logger: Logger;
  /** Job artifacts; the local store also serves its signed downloads (GET /artifacts/*). */
  artifacts?: ArtifactStore;
  /** The in-process worker, when there is one: pool sizes, active runs and backend probes for /health. */
  worker?: {
    poolSizes(): Record<string, number>;
    probe(): Promise<BackendProbe[]>;
    engine: { activeRuns(): number };
  };
  /** Aborted when the service shuts down: new executions get 503, waiting requests answer 202. */
  shutdown?: AbortSignal;
}
