import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { configSchema, type WardenConfig } from '../src/config/schema.js';
import type { Engine } from '../src/sandbox/engine.js';
import { resultWithoutRun } from '../src/sandbox/engine.js';
import { startServer, type RunningServer } from '../src/server.js';
import type { AuditLog } from '../src/store/audit.js';
import { startWorker, type WardenWorker } from '../src/worker/worker.js';

/** The bench's service settings (local redis-server, SQLite in `dir`), plus `overrides` (config input). */
function benchConfig(dir: string, overrides: Record<string, unknown> = {}): WardenConfig {
  const server = (overrides.server ?? {}) as Record<string, unknown>;
  return configSchema.parse({
    ...overrides,
    dataDir: dir,
    server: { port: 0, logLevel: 'warn', maxQueueDepth: 10_000, ...server },
  });
}

/** The embedded service (local redis-server, SQLite in a temp data dir) for one benchmark. */
export async function withBenchServer<T>(
  name: string,
  fn: (server: RunningServer, config: WardenConfig) => Promise<T>,
  options: { audit?: AuditLog } = {},
): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), `warden-bench-${name}-`));
  const config = benchConfig(dir);
  const server = await startServer(config, options);
  try {
    return await fn(server, config);
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** CPU time in ms (user + system). */
export interface CpuMs {
  user: number;
  system: number;
}

/** The service in its own process, as a user runs it: the bench is then an external HTTP client. */
export interface ExternalServer {
  url: string;
  config: WardenConfig;
  /**
   * CPU the service has used so far: its own process (API, workers, store; not the sandboxed programs,
   * which are its children) and its local redis-server, which `service` leaves out.
   */
  cpu(): Promise<{ service: CpuMs; redis: CpuMs | null }>;
  close(): Promise<void>;
}

type ChildMessage =
  | { kind: 'ready'; url: string; redisPid: number | null }
  | { kind: 'cpu'; user: number; system: number }
  | { kind: 'failed'; message: string };

const ENTRY = fileURLToPath(import.meta.url);

/** CPU of another process from /proc (Linux), null where it cannot be read. */
function procCpu(pid: number): CpuMs | null {
  try {
    // Fields after the command (which may hold spaces): utime and stime are the 12th and 13th.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const tick = 1000 / 100; // USER_HZ is 100 on Linux
    return { user: Number(fields[11]) * tick, system: Number(fields[12]) * tick };
  } catch {
    return null;
  }
}

/**
 * Starts the service as a child process (node + tsx, the same source) and waits until it listens.
 * `cpuProfDir`: write a V8 CPU profile of the service there when it stops (`--cpu-prof`).
 * `stubEngine`: its worker's engine answers every run at once with `1\n` (no sandbox, no pool), so
 * what is measured is the API, queue, store and worker alone.
 */
export async function spawnBenchServer(
  name: string,
  overrides: Record<string, unknown> = {},
  options: { cpuProfDir?: string; stubEngine?: boolean } = {},
): Promise<ExternalServer> {
  if (options.stubEngine) overrides = { ...overrides, sandbox: { pool: { size: 0 } } };
  const dir = mkdtempSync(join(tmpdir(), `warden-bench-${name}-`));
  const config = benchConfig(dir, overrides);
  const execArgv = ['--import', 'tsx'];
  if (options.cpuProfDir) execArgv.push('--cpu-prof', `--cpu-prof-dir=${options.cpuProfDir}`);
  const argv = ['--serve', dir, JSON.stringify(overrides), ...(options.stubEngine ? ['--stub-engine'] : [])];
  const child: ChildProcess = fork(ENTRY, argv, {
    execArgv,
    // Its log goes to stderr with the bench's progress: stdout carries the results.
    stdio: ['ignore', 2, 'inherit', 'ipc'],
  });
  const next = <K extends ChildMessage['kind']>(kind: K) =>
    new Promise<Extract<ChildMessage, { kind: K }>>((resolve, reject) => {
      const onMessage = (m: ChildMessage) => {
        if (m.kind === 'failed') reject(new Error(`bench server: ${m.message}`));
        else if (m.kind === kind) resolve(m as Extract<ChildMessage, { kind: K }>);
        else return;
        child.off('message', onMessage);
        child.off('exit', onExit);
      };
      const onExit = (code: number | null) => reject(new Error(`bench server exited (${code})`));
      child.on('message', onMessage);
      child.once('exit', onExit);
    });
  let ready: Extract<ChildMessage, { kind: 'ready' }>;
  try {
    ready = await next('ready');
  } catch (err) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    url: ready.url,
    config,
    async cpu() {
      const asked = next('cpu');
      child.send('cpu');
      const own = await asked;
      return {
        service: { user: own.user, system: own.system },
        redis: ready.redisPid === null ? null : procCpu(ready.redisPid),
      };
    },
    async close() {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.send('close');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A worker whose engine answers every run with `1\n` at once. */
async function stubbedWorker(config: WardenConfig, server: RunningServer): Promise<WardenWorker> {
  const worker = await startWorker({
    ...config,
    queue: { ...config.queue, redisUrl: server.localRedis!.url },
  });
  (worker.engine as { run: Engine['run'] }).run = async () => ({
    ...resultWithoutRun('bwrap', 'success'),
    exitCode: 0,
    stdout: '1\n',
    isolation: 'namespaces',
  });
  return worker;
}

/** The child side of spawnBenchServer. */
async function serveChild(dir: string, overrides: Record<string, unknown>, stub: boolean): Promise<void> {
  const send = (m: ChildMessage) => process.send?.(m);
  let server: RunningServer;
  let worker: WardenWorker | undefined;
  try {
    const config = benchConfig(dir, stub ? { ...overrides, workers: { inProcess: false } } : overrides);
    server = await startServer(config);
    if (stub) worker = await stubbedWorker(config, server);
  } catch (err) {
    send({ kind: 'failed', message: (err as Error).message });
    process.exit(1);
  }
  process.on('message', (m) => {
    if (m === 'cpu') {
      const { user, system } = process.cpuUsage();
      send({ kind: 'cpu', user: user / 1000, system: system / 1000 });
    } else if (m === 'close') {
      // process.exit after close: --cpu-prof writes its profile at a normal exit.
      void (async () => {
        await worker?.close();
        await server.close();
      })().finally(() => process.exit(0));
    }
  });
  send({ kind: 'ready', url: server.url, redisPid: server.localRedis?.pid ?? null });
}

if (process.argv[1] === ENTRY && process.argv[2] === '--serve') {
  const overrides = JSON.parse(process.argv[4] ?? '{}') as Record<string, unknown>;
  await serveChild(process.argv[3]!, overrides, process.argv[5] === '--stub-engine');
}

export function setupFacts(config: WardenConfig): Record<string, unknown> {
  return {
    workers: config.workers.concurrency,
    pool_per_language: config.sandbox.pool.size,
    backend: config.sandbox.backend,
    store: 'sqlite',
    queue: 'local redis-server',
  };
}
