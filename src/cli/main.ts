import { createRequire } from 'node:module';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { BACKEND_NAMES } from '../sandbox/types.js';
import { runCommand } from './run.js';
import { doctorCommand } from './doctor.js';
import { validateCommand } from './validate.js';
import { UsageError, EXIT } from './common.js';
import { addAuditCommand } from './audit.js';

const { version } = createRequire(import.meta.url)('../../package.json') as { version: string };

/** A port as given on the command line: a whole number, 0 to 65535. */
function portNumber(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) > 65_535)
    throw new InvalidArgumentError('a port is a whole number from 0 to 65535');
  return Number(value);
}

const program = new Command('warden')
  .description('Run untrusted code safely: static analysis, sandboxed runs under hard limits.')
  .version(version)
  .option('-c, --config <file>', 'configuration file (default: ./warden.yaml when present)')
  .exitOverride()
  .showHelpAfterError();

program
  .command('run')
  .description('run a file once in a sandbox and report the verdict')
  .argument('<file>', 'source file (language from its extension unless --lang)')
  .option('--lang <language>', 'python, javascript or typescript')
  .option('--stdin <file>', 'file given to the program as standard input')
  .option('--timeout <seconds>', 'wall-clock limit in seconds', Number)
  .option('--memory <MB>', 'memory limit in MiB', Number)
  .option('--cpus <n>', 'CPU bandwidth in cores', Number)
  .addOption(new Option('--backend <backend>', 'isolation backend').choices([...BACKEND_NAMES]))
  .option('--no-analysis', 'skip static analysis')
  .option('--json', 'print the RunResult as one JSON object')
  .action(async (file: string, opts) => {
    process.exitCode = await runCommand(file, { ...opts, config: program.opts().config });
  });

program
  .command('validate')
  .description('static analysis only: exit 0 when safe, 3 when rejected')
  .argument('<file>', 'source file')
  .option('--lang <language>', 'python, javascript or typescript')
  .option('--json', 'print { safe, language, violations[] } as JSON')
  .action(async (file: string, opts) => {
    process.exitCode = await validateCommand(file, { ...opts, config: program.opts().config });
  });

program
  .command('doctor')
  .description('which backends work on this host, cgroups, seccomp, runtimes')
  .option('--json', 'print the report as JSON')
  .option('--build-image', "build the docker backend's local image first, unless it exists")
  .action(async (opts) => {
    process.exitCode = await doctorCommand({ ...opts, config: program.opts().config });
  });

program
  .command('serve')
  .description('start the HTTP service (API + workers; local Redis and SQLite by default)')
  .option('-c, --config <file>', 'configuration file (as the global --config)')
  .option('--host <address>', 'address to listen on (server.host; default 127.0.0.1)')
  .option('--port <port>', 'port to listen on (server.port; default 8080, 0 picks a free one)', portNumber)
  .action(async (opts: { config?: string; host?: string; port?: number }) => {
    const { serveCommand } = await import('./serve.js');
    process.exitCode = await serveCommand({ ...opts, config: opts.config ?? program.opts().config });
  });

const keys = program
  .command('keys')
  .description('API keys: clients send one as `Authorization: Bearer <key>`');
keys
  .command('create')
  .description('make a key and print it (the only time it is shown: the store keeps its hash)')
  .requiredOption('--tenant <name>', 'whose key: what it creates belongs to this tenant')
  .option('--scopes <list>', 'comma-separated: execute, tasks, jobs, admin (default: execute,tasks,jobs)')
  .option('--expires <duration>', 'lifetime, e.g. 90d or 12h (default: until revoked)')
  .option('--name <text>', 'a note on what the key is for')
  .option('--json', 'print { id, key, tenant, scopes, … } as JSON')
  .action(
    async (opts: { tenant: string; scopes?: string; expires?: string; name?: string; json?: boolean }) => {
      const { keysCreateCommand } = await import('./keys.js');
      process.exitCode = await keysCreateCommand({ ...opts, config: program.opts().config });
    },
  );
keys
  .command('list')
  .description('the keys (never the keys themselves): id, tenant, scopes, state, expiry')
  .option('--tenant <name>', "only this tenant's keys")
  .option('--json', 'print { keys: [...] } as JSON')
  .action(async (opts: { tenant?: string; json?: boolean }) => {
    const { keysListCommand } = await import('./keys.js');
    process.exitCode = await keysListCommand({ ...opts, config: program.opts().config });
  });
keys
  .command('revoke')
  .description('revoke a key by its id (at once, on every server)')
  .argument('<id>', 'the key id (key_…), from `warden keys list`')
  .action(async (id: string) => {
    const { keysRevokeCommand } = await import('./keys.js');
    process.exitCode = await keysRevokeCommand(id, { config: program.opts().config });
  });


program
  .command('worker')
  .description('a queue worker alone, against the Redis of a `warden serve` (REDIS_URL)')
  .option('--executions', 'run executions (POST /execute)')
  .option('--validation', 'validate uploaded task files')
  .option('--tasks', 'run tasks (POST /tasks)')
  .option('--jobs', 'run jobs (POST /jobs)')
  .addHelpText('after', '\nWith no role flag the worker takes every role.')
  .action(async (opts: { executions?: boolean; validation?: boolean; tasks?: boolean; jobs?: boolean }) => {
    const { workerCommand } = await import('./worker.js');
    process.exitCode = await workerCommand({ ...opts, config: program.opts().config });
  });

const collect = (value: string, previous: string[] = []) => [...previous, value];
program
  .command('job')
  .description('jobs: commands with files, limits and outputs')
  .command('run')
  .description('run one job on this machine: the log live, artifacts into --out')
  .argument('<command...>', 'the command and its arguments, after --')
  .option('--file <path>', 'a file for /box (repeatable; `local=box/path` to rename)', collect)
  .option('--env <NAME=value>', 'an environment variable (repeatable)', collect)
  .option('--out <dir>', 'where the files the job leaves in /out are copied')
  .option('--timeout <seconds>', 'wall-clock limit in seconds', Number)
  .option('--cpu <cores>', 'CPU, e.g. 0.5 or 500m')
  .option('--memory <quantity>', 'memory, e.g. 512Mi')
  .option('--disk <quantity>', 'each writable area, e.g. 1Gi')
  .action(async (argv: string[], opts) => {
    const { jobRunCommand } = await import('./job.js');
    process.exitCode = await jobRunCommand(argv, { ...opts, config: program.opts().config });
  });

program
  .command('webhooks')
  .description('webhooks: the signing secret of callbacks')
  .command('secret')
  .description("print a tenant's webhook signing secret (made on first use)")
  .requiredOption('--tenant <name>', 'the tenant')
  .option('--rotate', 'replace it with a new one and print that')
  .option('--json', 'print { tenant, secret, created_at, rotated_at }')
  .action(async (opts: { tenant: string; rotate?: boolean; json?: boolean }) => {
    const { webhookSecretCommand } = await import('./webhooks.js');
    process.exitCode = await webhookSecretCommand({ ...opts, config: program.opts().config });
  });

addAuditCommand(program);

program
  .command('bench')
  .description('run the benchmarks and write JSON results under bench/results/')
  .action(async () => {
    const { benchCommand } = await import('./bench.js');
    process.exitCode = await benchCommand();
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode === 0 ? 0 : EXIT.usage;
  } else if (err instanceof UsageError) {
    process.stderr.write(`warden: ${err.message}\n`);
    process.exitCode = EXIT.usage;
  } else {
    process.stderr.write(`warden: internal error: ${(err as Error).message}\n`);
    process.exitCode = EXIT.internal;
  }
}
