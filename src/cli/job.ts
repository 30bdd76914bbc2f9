import { randomUUID } from 'node:crypto';
import { createWriteStream, mkdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { quote } from 'shell-quote';
import { CommandAllowList } from '../jobs/command.js';
import { executeJob, jobOutcome } from '../jobs/execute.js';
import { outputBase } from '../jobs/outdir.js';
import { JobRequestError, prepareJob, type JobRequest } from '../jobs/spec.js';
import { createEngine } from '../sandbox/engine.js';
import { EXIT, UsageError, positive, readConfig } from './common.js';

export interface JobRunOptions {
  config?: string;
  file?: string[];
  env?: string[];
  out?: string;
  timeout?: number;
  cpu?: string;
  memory?: string;
  disk?: string;
}

const MiB = 1024 * 1024;

function readFiles(paths: string[]): NonNullable<JobRequest['files']> {
  return paths.map((spec) => {
    // `local=in/box/path` puts a file somewhere else than under its own name.
    const [local, inside] = spec.includes('=')
      ? (spec.split('=', 2) as [string, string])
      : [spec, basename(spec)];
    try {
      return { path: inside, content: readFileSync(local).toString('base64') };
    } catch (err) {
      throw new UsageError(
        `cannot read ${local}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
  });
}

function readEnv(pairs: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`--env ${JSON.stringify(pair)}: use NAME=value`);
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return env;
}

/**
 * `warden job run -- CMD ARGS…`: one job on this machine, without the service: the same checks,
 * sandbox and /out collection as a job worker, the log live on the terminal, artifacts copied into
 * --out. Exit 0 when the job completed, 3 when it did not (failed, timeout, cancelled), 1 when
 * Warden failed, 2 for bad usage.
 */
export async function jobRunCommand(argv: string[], opts: JobRunOptions): Promise<number> {
  const config = readConfig(opts.config);
  const request: JobRequest = {
    command: quote(argv),
    environment: readEnv(opts.env ?? []),
    timeout: positive('--timeout', opts.timeout),
    resources: { cpu: opts.cpu, memory: opts.memory, disk: opts.disk },
    files: readFiles(opts.file ?? []),
  };
  let prepared;
  try {
    prepared = prepareJob(request, config.jobs, new CommandAllowList(config.jobs.allowedCommands));
  } catch (err) {
    if (err instanceof JobRequestError) throw new UsageError(`${err.field}: ${err.message}`);
    throw err;
  }
  const outDir = opts.out ? resolve(opts.out) : undefined;
  const controller = new AbortController();
  const interrupt = () => controller.abort();
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  const engine = createEngine({ ...config.sandbox, pool: { ...config.sandbox.pool, size: 0 } });
  try {
    const { result, artifacts, skipped } = await executeJob(
      engine,
      { id: randomUUID(), ...prepared },
      {
        config: config.jobs,
        outputBase: outputBase(config.dataDir),
        signal: controller.signal,
        onOutput: (stream, chunk) => (stream === 'stdout' ? process.stdout : process.stderr).write(chunk),
        sink: async (path, body) => {
          if (!outDir) {
            body.resume(); // listed, not kept
            return;
          }
          // Names come from the collector's readdir walk: plain relative paths without `..`.
          const target = join(outDir, path);
          mkdirSync(dirname(target), { recursive: true });
          await pipeline(body, createWriteStream(target));
        },
      },
    );
    const outcome = jobOutcome(result, controller.signal.aborted, prepared.spec);
    for (const a of artifacts)
      process.stderr.write(
        `[warden] artifact ${a.path} (${a.size} bytes${outDir ? '' : ', not kept: no --out'})\n`,
      );
    for (const s of skipped) process.stderr.write(`[warden] skipped ${s.path}: ${s.reason}\n`);
    const u = result.usage;
    process.stderr.write(
      `[warden] job ${outcome.status} exit=${result.exitCode ?? '-'} signal=${result.signal ?? '-'} ` +
        `wall=${u.wallMs}ms cpu=${u.cpuMs}ms memory=${(u.peakMemoryBytes / MiB).toFixed(1)}MiB` +
        `${outcome.error ? ` (${outcome.error})` : ''}\n`,
    );
    if (outcome.status === 'error') return EXIT.internal;
    return outcome.status === 'completed' ? EXIT.ok : EXIT.rejected;
  } finally {
    process.off('SIGINT', interrupt);
    process.off('SIGTERM', interrupt);
    await engine.shutdown();
  }
}
