import type { WorkerRole } from '../queue/heartbeats.js';
import { startWorker, WorkerConfigError } from '../worker/worker.js';
import { BackendUnavailableError } from '../sandbox/engine.js';
import { EXIT, UsageError, readConfig } from './common.js';

export interface WorkerOptions {
  config?: string;
  executions?: boolean;
  validation?: boolean;
  tasks?: boolean;
  jobs?: boolean;
}

/**
 * `warden worker`: a queue worker alone (needs REDIS_URL), until SIGINT/SIGTERM. Role flags pick what
 * it takes from the queues; with none it takes everything.
 */
export async function workerCommand(opts: WorkerOptions): Promise<number> {
  const config = readConfig(opts.config);
  const roles: WorkerRole[] = [];
  if (opts.executions) roles.push('executions');
  if (opts.validation) roles.push('validation');
  if (opts.tasks) roles.push('tasks');
  if (opts.jobs) roles.push('jobs');
  let worker;
  try {
    worker = await startWorker(config, { roles });
  } catch (err) {
    if (err instanceof WorkerConfigError) throw new UsageError(err.message);
    if (err instanceof BackendUnavailableError) {
      process.stderr.write(`warden: ${err.message}\n`);
      return EXIT.internal;
    }
    throw err;
  }
  process.stderr.write(
    `warden: worker ready (${worker.roles.join(', ')}; backend ${worker.engine.defaultBackend})\n`,
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await worker.close();
  return 0;
}
