import type { Logger } from 'pino';
import type { WardenConfig } from '../config/schema.js';
import type { Metrics } from '../metrics.js';
import type { ExecutionQueue } from '../queue/executions.js';
import type { BackendProbe } from '../sandbox/types.js';
import type { Store } from '../store/db.js';

/** What the HTTP layer is given; it validates, enqueues and answers, and never runs code itself. */
export interface AppDeps {
  config: WardenConfig;
  store: Store;
  queue: ExecutionQueue;
  metrics: Metrics;
  logger: Logger;
  /** The in-process worker, when there is one: pool sizes, active runs and backend probes for /health. */
  worker?: {
    poolSizes(): Record<string, number>;
    probe(): Promise<BackendProbe[]>;
    engine: { activeRuns(): number };
  };
  /** Aborted when the service shuts down: new executions get 503, waiting requests answer 202. */
  shutdown?: AbortSignal;
}
