import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join, resolve } from 'node:path';
import { isAlive } from '../sandbox/pids.js';

/**
 * The redis-server `warden serve` starts when no REDIS_URL is given (also tests and benchmarks). It
 * keeps the queue across restarts (append-only file, fsync every second, in its dir), listens only on
 * a unix socket in that dir (no TCP port, so no port race and nothing reachable from the network),
 * and is started again whenever it dies; clients reconnect to the same socket and find the same data.
 */
export interface LocalRedis {
  /** `unix:///…/redis.sock`: what queue.redisUrl would be to reach it. */
  readonly url: string;
  readonly socket: string;
  /** The redis-server running now (a new one after a restart). */
  readonly pid: number;
  /** How many times it was started again after it died (attempts that failed included). */
  readonly restarts: number;
  /** SIGTERM (Redis flushes the append-only file), then SIGKILL if it lingers. Idempotent. */
  stop(): Promise<void>;
}

export interface LocalRedisOptions {
  binary?: string;
  dir: string;
  /** It died (`code`/`signal`) and is being started again. */
  onRestart?: (info: { pid: number; code: number | null; signal: string | null }) => void;
  /** A restart failed; another is tried after a backoff. */
  onError?: (err: Error) => void;
}

export class LocalRedisError extends Error {}

/** Longest unix socket path the kernel takes (sun_path is 108 bytes with its NUL). */
const MAX_SOCKET_PATH = 107;
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 5_000;

function isRedis(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('redis-server');
  } catch {
    return false;
  }
}

async function waitUntil(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

/** SIGTERM (so that it writes out its append-only file), SIGKILL if it does not go in time. */
async function terminate(pid: number): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  if (await waitUntil(() => !isAlive(pid), STOP_TIMEOUT_MS)) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
}

/**
 * Pid files are `redis-<ownerPid>.pid` holding the redis pid. A server left behind by a dead owner is
 * stopped (gracefully: its data is the queue this start resumes); a live owner's means that another
 * process serves this data dir, and two servers on one append-only file would corrupt it.
 */
async function takeOver(dir: string): Promise<void> {
  for (const name of readdirSync(dir)) {
    const match = /^redis-(\d+)\.pid$/.exec(name);
    if (!match) continue;
    const owner = Number(match[1]);
    const pid = Number(readFileSync(join(dir, name), 'utf8'));
    const running = Number.isInteger(pid) && pid > 0 && isRedis(pid);
    if (owner !== process.pid && isAlive(owner) && running) {
      throw new LocalRedisError(
        `the redis-server in ${dir} belongs to the running process ${owner} (another warden serve on this data dir?)`,
      );
    }
    if (running) await terminate(pid);
    rmSync(join(dir, name), { force: true });
  }
}

/** Speaks just enough RESP to know the server answers (not still loading its data). */
async function pings(socketPath: string): Promise<boolean> {
  return new Promise((resolvePing) => {
    const socket = createConnection({ path: socketPath });
    let data = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolvePing(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      data += chunk.toString();
      if (data.includes('\r\n')) done(data.startsWith('+PONG'));
    });
  });
}

function logTail(logFile: string): string {
  return existsSync(logFile) ? readFileSync(logFile, 'utf8').trim().split('\n').slice(-3).join(' | ') : '';
}

export async function startLocalRedis(options: LocalRedisOptions): Promise<LocalRedis> {
  const binary = options.binary ?? '/usr/bin/redis-server';
  if (!existsSync(binary)) {
    throw new LocalRedisError(`${binary} not found: install redis-server or set REDIS_URL (queue.redisUrl)`);
  }
  const dir = resolve(options.dir);
  const socket = join(dir, 'redis.sock');
  if (Buffer.byteLength(socket) > MAX_SOCKET_PATH) {
    throw new LocalRedisError(
      `the redis socket path ${socket} is longer than ${MAX_SOCKET_PATH} bytes: use a shorter dataDir or set REDIS_URL`,
    );
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  await takeOver(dir);
  const logFile = join(dir, 'redis.log');
  const pidFile = join(dir, `redis-${process.pid}.pid`);
  const args = [
    ['--port', '0'],
    ['--unixsocket', socket],
    ['--unixsocketperm', '600'],
    ['--save', ''],
    ['--appendonly', 'yes'],
    ['--appendfsync', 'everysec'],
    ['--dir', dir],
    ['--logfile', logFile],
    ['--daemonize', 'no'],
  ].flat();

  let child: ChildProcess | undefined;
  let stopping: Promise<void> | undefined;
  let restarts = 0;
  const killNow = () => {
    if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  };
  const onExit = () => {
    killNow();
    rmSync(pidFile, { force: true });
  };
  process.on('exit', onExit);

  /** Starts one redis-server and waits for it to answer; the reason when it does not. */
  async function launch(): Promise<string | undefined> {
    // Detached (own process group): a Ctrl-C at the terminal must not kill the queue before the
    // service has drained in-flight runs. The exit hook and the pid file make up for it.
    const started = spawn(binary, args, { detached: true, stdio: 'ignore', env: { PATH: '/usr/bin:/bin' } });
    started.unref();
    child = started;
    const spawnError = new Promise<string>((r) => started.once('error', (err) => r(err.message)));
    if (started.pid === undefined) return `cannot start ${binary}: ${await spawnError}`;
    writeFileSync(pidFile, String(started.pid));
    let up = false;
    // Only a server that was up is restarted from here; one that never came up is the caller's.
    started.once('exit', (code, signal) => {
      if (!up || stopping || child !== started) return;
      options.onRestart?.({ pid: started.pid!, code, signal });
      void supervise();
    });
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (started.exitCode === null && started.signalCode === null && Date.now() < deadline) {
      if (await pings(socket)) {
        up = true;
        return undefined;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    killNow();
    const log = logTail(logFile);
    return `redis-server did not start on ${socket}${log ? `: ${log}` : ''}`;
  }

  /** Starts it again until it stays up, backing off while it keeps failing. */
  async function supervise(): Promise<void> {
    let backoff = 100;
    while (!stopping) {
      restarts++;
      const failed = await launch();
      if (!failed) return;
      options.onError?.(new LocalRedisError(failed));
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(backoff * 2, 5000);
    }
  }

  const failed = await launch();
  if (failed) {
    stopping = Promise.resolve();
    onExit();
    process.off('exit', onExit);
    throw new LocalRedisError(failed);
  }

  return {
    url: `unix://${socket}`,
    socket,
    get pid() {
      return child?.pid ?? 0;
    },
    get restarts() {
      return restarts;
    },
    stop() {
      stopping ??= (async () => {
        if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
          await terminate(child.pid);
        }
        process.off('exit', onExit);
        rmSync(pidFile, { force: true });
      })();
      return stopping;
    },
  };
}
