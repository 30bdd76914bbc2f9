import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, chownSync, constants, mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import pg from 'pg';

/**
 * A throwaway PostgreSQL cluster for tests: initdb in a temp dir, postgres on a free loopback port,
 * stopped by pid and removed afterwards. The binaries are found with `pg_config --bindir`, else
 * `initdb` on PATH. As root, both run as the `postgres` user through setpriv (which execs, so the pid
 * we hold is the postmaster's): PostgreSQL refuses to run as root.
 *
 * Without PostgreSQL the PostgreSQL tests are skipped, except under CI=true, where they run and fail
 * saying what is missing: CI must prove both stores.
 */

export interface TestPostgres {
  url: string;
  /** The postmaster running now. */
  readonly pid: number;
  /** Fast shutdown; the data stays until stop(). */
  halt(): Promise<void>;
  /** Starts it again after halt(), on the same data and port: clients reconnect to the same URL. */
  resume(): Promise<void>;
  stop(): Promise<void>;
}

const isExecutable = (path: string) => {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

function findBinDir(): string | undefined {
  const config = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  const fromConfig = config.status === 0 ? config.stdout.trim() : '';
  if (fromConfig && isExecutable(join(fromConfig, 'initdb')) && isExecutable(join(fromConfig, 'postgres')))
    return fromConfig;
  for (const dir of (process.env.PATH ?? '').split(delimiter).filter(Boolean)) {
    const initdb = join(dir, 'initdb');
    if (isExecutable(initdb)) return dirname(realpathSync(initdb));
  }
  return undefined;
}

const BIN = findBinDir();
const asRoot = process.getuid?.() === 0;

function missing(): string | undefined {
  if (!BIN)
    return 'PostgreSQL not found (neither `pg_config --bindir` nor `initdb` on PATH): install postgresql';
  if (asRoot && spawnSync('id', ['-u', 'postgres']).status !== 0)
    return 'no `postgres` user to run PostgreSQL as (running as root)';
  return undefined;
}

/** Whether to run the PostgreSQL tests: when it is installed, and always under CI=true. */
export function postgresAvailable(): boolean {
  return missing() === undefined || process.env.CI === 'true';
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

function asPostgres(argv: string[]): [string, string[]] {
  if (!asRoot) return [argv[0]!, argv.slice(1)];
  return ['setpriv', ['--reuid=postgres', '--regid=postgres', '--init-groups', '--', ...argv]];
}

async function reachable(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url });
  try {
    await client.connect();
    await client.end();
    return true;
  } catch {
    await client.end().catch(() => {});
    return false;
  }
}

export async function startPostgres(): Promise<TestPostgres> {
  const why = missing();
  if (why) throw new Error(why);
  const bin = BIN!;
  const dir = mkdtempSync(join(tmpdir(), 'warden-pg-'));
  if (asRoot) {
    const uid = Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim());
    const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim());
    chownSync(dir, uid, gid);
  }
  const data = join(dir, 'data');
  const [cmd, args] = asPostgres([
    join(bin, 'initdb'),
    '-D',
    data,
    '-U',
    'warden',
    '--auth=trust',
    '-E',
    'UTF8',
    '--no-sync',
  ]);
  const init = spawnSync(cmd, args, { encoding: 'utf8', cwd: dir });
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr}`);

  const port = await freePort();
  const url = `postgres://warden@127.0.0.1:${port}/postgres`;
  let child: ChildProcess;
  let exited: Promise<void>;

  async function launch(): Promise<void> {
    const [pcmd, pargs] = asPostgres([
      join(bin, 'postgres'),
      '-D',
      data,
      '-p',
      String(port),
      '-k',
      dir,
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'fsync=off',
      '-c',
      'synchronous_commit=off',
      '-c',
      'full_page_writes=off',
    ]);
    child = spawn(pcmd, pargs, { stdio: 'ignore', cwd: dir });
    const started = child;
    exited = new Promise<void>((resolve) => started.once('exit', () => resolve()));
    const deadline = Date.now() + 15_000;
    while (!(await reachable(url))) {
      if (Date.now() > deadline || started.exitCode !== null) {
        started.kill('SIGKILL');
        throw new Error(`postgres did not start on port ${port}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async function shutdown(signal: NodeJS.Signals): Promise<void> {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  }

  await launch();
  return {
    url,
    get pid() {
      return child.pid ?? 0;
    },
    halt: () => shutdown('SIGINT'),
    resume: launch,
    async stop() {
      // SIGQUIT: immediate shutdown; the cluster is thrown away anyway.
      await shutdown('SIGQUIT');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
