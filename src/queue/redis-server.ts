import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { join, resolve } from 'node:path';

/** A redis-server child owned by this process: `warden serve` without REDIS_URL, tests, benchmarks. */
export interface LocalRedis {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /** SIGTERM, then SIGKILL if it lingers. Safe to call more than once. */
  stop(): Promise<void>;
}

export class LocalRedisError extends Error {}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function isRedis(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('redis-server');
  } catch {
    return false;
  }
}

/**
 * Pid files are `redis-<ownerPid>.pid` holding the redis pid, so a redis left behind by a crashed
 * owner is found and killed at the next start, while a live owner's server is left alone.
 */
function killOrphans(dir: string): void {
  for (const name of readdirSync(dir)) {
    const match = /^redis-(\d+)\.pid$/.exec(name);
    if (!match) continue;
    const owner = Number(match[1]);
    if (isAlive(owner) && owner !== process.pid) continue;
    const pid = Number(readFileSync(join(dir, name), 'utf8'));
    if (Number.isInteger(pid) && pid > 0 && isRedis(pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    rmSync(join(dir, name), { force: true });
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

/** Speaks just enough RESP to know the server answers. */
async function pings(port: number): Promise<boolean> {
  return new Promise((resolvePing) => {
    const socket = createConnection({ host: '127.0.0.1', port });
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

async function startOnce(binary: string, dir: string, port: number): Promise<LocalRedis | string> {
  const logFile = join(dir, 'redis.log');
  // Detached (own process group): a Ctrl-C at the terminal must not kill the queue before the
  // service has drained in-flight runs. The exit hook and the pid file make up for it.
  const child = spawn(
    binary,
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--protected-mode',
      'yes',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
      '--logfile',
      logFile,
      '--daemonize',
      'no',
    ],
    { detached: true, stdio: 'ignore', env: { PATH: '/usr/bin:/bin' } },
  );
  const pid = child.pid;
  if (pid === undefined) {
    return new Promise((r) => child.once('error', (err) => r(`cannot start ${binary}: ${err.message}`)));
  }
  let exited = false;
  const exitedPromise = new Promise<void>((r) =>
    child.once('exit', () => {
      exited = true;
      r();
    }),
  );
  child.unref();
  const pidFile = join(dir, `redis-${process.pid}.pid`);
  writeFileSync(pidFile, String(pid));
  const killNow = () => {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  };
  const onExit = () => {
    killNow();
    rmSync(pidFile, { force: true });
  };
  process.on('exit', onExit);

  const deadline = Date.now() + 10_000;
  while (!exited && Date.now() < deadline) {
    if (await pings(port)) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  if (exited || Date.now() >= deadline) {
    onExit();
    process.off('exit', onExit);
    const log = existsSync(logFile)
      ? readFileSync(logFile, 'utf8').trim().split('\n').slice(-3).join(' | ')
      : '';
    return `redis-server did not start on port ${port}${log ? `: ${log}` : ''}`;
  }

  let stopping: Promise<void> | undefined;
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    pid,
    stop() {
      stopping ??= (async () => {
        if (!exited) {
          try {
            process.kill(pid, 'SIGTERM');
          } catch {
            /* already gone */
          }
          const timer = setTimeout(killNow, 3000);
          await exitedPromise;
          clearTimeout(timer);
        }
        process.off('exit', onExit);
        rmSync(pidFile, { force: true });
      })();
      return stopping;
    },
  };
}

/**
 * Starts redis-server on a free loopback port with no persistence (`--save ''`, no AOF): the queue
 * only carries work in flight; executions themselves are persisted in the store.
 */
export async function startLocalRedis(options: {
  binary?: string;
  dir: string;
  /** A fixed port (e.g. to bring a stopped server back where its clients reconnect); default: a free one. */
  port?: number;
}): Promise<LocalRedis> {
  const binary = options.binary ?? '/usr/bin/redis-server';
  if (!existsSync(binary)) {
    throw new LocalRedisError(`${binary} not found: install redis-server or set REDIS_URL (queue.redisUrl)`);
  }
  const dir = resolve(options.dir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  killOrphans(dir);
  let last = '';
  // The free port can be taken between the probe and redis binding it: try a few.
  for (let attempt = 0; attempt < 5; attempt++) {
    const started = await startOnce(binary, dir, options.port ?? (await freePort()));
    if (typeof started !== 'string') return started;
    last = started;
    if (options.port) break;
  }
  throw new LocalRedisError(last);
}
