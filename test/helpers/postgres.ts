import { spawn, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

/**
 * A throwaway PostgreSQL cluster for tests: initdb in a temp dir, postgres on a free loopback port,
 * stopped by pid and removed afterwards. PostgreSQL refuses to run as root, so both run as the
 * `postgres` user through setpriv (which execs, so the pid we hold is the postmaster's).
 */
const BIN = '/usr/lib/postgresql/15/bin';

export interface TestPostgres {
  url: string;
  stop(): Promise<void>;
}

export function postgresAvailable(): boolean {
  if (!existsSync(join(BIN, 'initdb'))) return false;
  return spawnSync('id', ['-u', 'postgres']).status === 0;
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
  return ['setpriv', ['--reuid=postgres', '--regid=postgres', '--init-groups', '--', ...argv]];
}

export async function startPostgres(): Promise<TestPostgres> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-pg-'));
  const uid = Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim());
  const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim());
  chownSync(dir, uid, gid);
  const data = join(dir, 'data');
  const [cmd, args] = asPostgres([
    join(BIN, 'initdb'),
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
  const [pcmd, pargs] = asPostgres([
    join(BIN, 'postgres'),
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
  const child = spawn(pcmd, pargs, { stdio: 'ignore', cwd: dir });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `postgres://warden@127.0.0.1:${port}/postgres`;

  const deadline = Date.now() + 15_000;
  for (;;) {
    const client = new pg.Client({ connectionString: url });
    try {
      await client.connect();
      await client.end();
      break;
    } catch (err) {
      await client.end().catch(() => {});
      if (Date.now() > deadline || child.exitCode !== null) {
        child.kill('SIGKILL');
        throw new Error(`postgres did not start: ${(err as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    url,
    async stop() {
      // SIGQUIT: immediate shutdown; the cluster is thrown away anyway.
      if (child.exitCode === null) child.kill('SIGQUIT');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
