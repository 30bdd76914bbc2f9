import { startExecutionWorker, WorkerConfigError } from '../worker/execution-worker.js';
import { UsageError, readConfig } from './common.js';

/** `warden worker`: a queue worker alone (needs REDIS_URL), until SIGINT/SIGTERM. */
export async function workerCommand(opts: { config?: string }): Promise<number> {
  const config = readConfig(opts.config);
  let worker;
  try {
    worker = await startExecutionWorker(config);
  } catch (err) {
    if (err instanceof WorkerConfigError) throw new UsageError(err.message);
    throw err;
  }
  process.stderr.write(`warden: worker ready (backend ${worker.engine.defaultBackend})\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await worker.close();
  return 0;
}
