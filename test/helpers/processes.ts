import { spawn, type ChildProcess } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { isAlive } from '../../src/sandbox/pids.js';
import { until } from './wait.js';

/**
 * Real Warden processes for fault tests: `node bin/warden.js serve|worker` with a config file of
 * their own, started from source, killed by pid. Everything a test starts here (and the local
 * redis-servers those processes start, which outlive a SIGKILLed owner) is stopped by cleanup().
 */

const BIN = fileURLToPath(new URL('../../bin/warden.js', import.meta.url));

/** What the environment could slip into a config (loadConfig reads these): never inherited. */
const CONFIG_ENV = /^(WARDEN_|REDIS_URL$|DATABASE_URL$|UPLOAD_STAGING_DIR$|TASKS_DIR$|QUARANTINE_DIR$|TASK_)/;

export interface WardenProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly dataDir: string;
  /** `http://…` for serve, once it listens. */
  readonly url: string;
  /** Everything it printed (stdout and stderr), for failure messages. */
  output(): string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM and wait for the exit. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const started: WardenProcess[] = [];
const dirs: string[] = [];

export function tempDir(prefix = 'warden-fault-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

export async function spawnWarden(
  command: 'serve' | 'worker',
  options: {
    dataDir: string;
    config?: Record<string, unknown>;
    args?: string[];
    readyMs?: number;
    /** Variables on top of the filtered environment (e.g. a WARDEN_PORT a flag must win over). */
    env?: Record<string, string>;
    /** `serve --config FILE` instead of the global `--config FILE serve`. */
    configAfterCommand?: boolean;
  },
): Promise<WardenProcess> {
  mkdirSync(options.dataDir, { recursive: true });
  const configFile = join(options.dataDir, 'warden.yaml');
  const config = options.config ?? {};
  writeFileSync(
    configFile,
    stringify({
      ...config,
      dataDir: options.dataDir,
      server: { port: 0, logLevel: 'warn', ...(config.server as object | undefined) },
    }),
  );
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !CONFIG_ENV.test(key)),
  ) as NodeJS.ProcessEnv;
  const argv = options.configAfterCommand
    ? [command, '--config', configFile]
    : ['--config', configFile, command];
  const child = spawn(process.execPath, [BIN, ...argv, ...(options.args ?? [])], {
    env: { ...env, ...options.env, WARDEN_FROM_SOURCE: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  let exitedYet = false;
  void exited.then(() => (exitedYet = true));
  const ready = command === 'serve' ? /warden: listening on (http:\/\/\S+)/ : /warden: worker ready/;
  const match = await until(
    () => {
      if (exitedYet) throw new Error(`warden ${command} exited before it was ready:\n${output}`);
      return ready.exec(output) ?? undefined;
    },
    options.readyMs ?? 60_000,
    50,
    `warden ${command} ready`,
  );
  const proc: WardenProcess = {
    child,
    pid: child.pid!,
    dataDir: options.dataDir,
    url: match[1] ?? '',
    output: () => output,
    exited,
    async stop() {
      if (!exitedYet) child.kill('SIGTERM');
      return exited;
    },
  };
  started.push(proc);
  return proc;
}

/** The local redis-server a serve started in its data dir, by the pid file it keeps there. */
export function localRedisPid(dataDir: string): number | undefined {
  const dir = join(dataDir, 'redis');
  if (!existsSync(dir)) return undefined;
  for (const name of readdirSync(dir)) {
    if (!/^redis-\d+\.pid$/.test(name)) continue;
    const pid = Number(readFileSync(join(dir, name), 'utf8'));
    if (pid > 0 && isAlive(pid)) return pid;
  }
  return undefined;
}

function isRedis(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('redis-server');
  } catch {
    return false;
  }
}

function kill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

/** Kills what is still running (by pid), then removes the temp dirs. For afterAll. */
export async function cleanup(): Promise<void> {
  for (const proc of started.splice(0)) {
    kill(proc.pid);
    await proc.exited;
  }
  for (const dir of dirs.splice(0)) {
    for (const name of existsSync(dir) ? readdirSync(dir, { recursive: true, encoding: 'utf8' }) : []) {
      const match = /(?:^|\/)redis-\d+\.pid$/.exec(name);
      if (!match) continue;
      const pid = Number(readFileSync(join(dir, name), 'utf8'));
      if (pid > 0 && isRedis(pid)) kill(pid);
    }
    rmSync(dir, { recursive: true, force: true });
  }
}
