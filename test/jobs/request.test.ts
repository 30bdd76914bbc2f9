import { describe, expect, it } from 'vitest';
import { jobsConfigSchema } from '../../src/config/jobs.js';
import { configSchema } from '../../src/config/schema.js';
import { CommandAllowList, CommandError, parseCommand } from '../../src/jobs/command.js';
import { jobOutcome } from '../../src/jobs/execute.js';
import { resultWithoutRun } from '../../src/sandbox/engine.js';
import { parseBytes, parseCpu, QuantityError } from '../../src/jobs/quantity.js';
import { JobRequestError, prepareJob, type JobRequest } from '../../src/jobs/spec.js';

/** How a job request becomes what a worker runs: quantities, argv without a shell, files, environment. */

describe('Kubernetes quantities', () => {
  it.each([
    ['512Mi', 512 * 2 ** 20],
    ['1Gi', 2 ** 30],
    ['1.5Gi', 1.5 * 2 ** 30],
    ['64Ki', 65536],
    ['500M', 500e6],
    ['1k', 1000],
    ['2G', 2e9],
    ['1048576', 1048576],
    [' 1Ti ', 2 ** 40],
  ])('%s is %d bytes', (text, bytes) => expect(parseBytes(text)).toBe(bytes));

  it.each(['', '0', '0Mi', '-1Gi', '1 Gi', '1gi', '1GB', 'Mi', '1e9', '1.Gi', 'lots', '99999999999Pi'])(
    '%j is refused',
    (text) => expect(() => parseBytes(text)).toThrow(QuantityError),
  );

  it.each([
    ['0.5', 0.5],
    ['2', 2],
    ['500m', 0.5],
    ['1500m', 1.5],
    ['10m', 0.01],
  ])('cpu %s is %d cores', (text, cores) => expect(parseCpu(text)).toBe(cores));

  it.each(['', '0', '0m', '1m', '-1', 'half', '0.5 cores', '500 m', '1e3m'])('cpu %j is refused', (text) =>
    expect(() => parseCpu(text)).toThrow(QuantityError),
  );
});

describe('a command line becomes argv without a shell', () => {
  it.each([
    ['python3 make.py', ['python3', 'make.py']],
    [`python3 -c "print('a b')"`, ['python3', '-c', "print('a b')"]],
    [`grep -c 'x y' 'in put.txt'`, ['grep', '-c', 'x y', 'in put.txt']],
    ['cat a\\ b', ['cat', 'a b']],
    ["echo '$HOME' '*' ';'", ['echo', '$HOME', '*', ';']],
    ['node -e "console.log(`x`)"', ['node', '-e', 'console.log(`x`)']],
  ])('%s', (command, argv) => expect(parseCommand(command)).toEqual(argv));

  it.each([
    ['ls; cat /etc/shadow', /operator ";"/],
    ['cat a | sh', /operator "\|"/],
    ['ls && id', /operator "&&"/],
    ['echo x > /etc/passwd', /operator ">"/],
    ['cat < x', /operator "<"/],
    ['sleep 1 &', /operator "&"/],
    ['cat *.py', /glob "\*\.py"/],
    ['echo $HOME', /variable \$HOME/],
    ['echo "${SECRET}"', /variable \$SECRET/],
    ['echo $(id)', /substitution|operator/],
    ['cat <(id)', /operator/],
    ['ls # comment', /comment/],
    ['', /empty/],
    ['""', /empty/],
    ['ls\0x', /NUL/],
  ])('%j is refused', (command, message) => {
    expect(() => parseCommand(command)).toThrow(CommandError);
    expect(() => parseCommand(command)).toThrow(message);
  });
});

describe('the allow-list', () => {
  const installed = new Set(['/usr/bin/python3', '/bin/ls', '/usr/bin/bash']);
  const list = new CommandAllowList(['python3', 'ls', 'curl', '/usr/bin/bash'], (p) => installed.has(p));

  it('resolves names to absolute paths that exist, skipping programs not installed', () => {
    expect(list.resolve(['python3', '-V'])).toEqual(['/usr/bin/python3', '-V']);
    expect(list.resolve(['ls'])).toEqual(['/bin/ls']);
    expect(list.resolve(['/usr/bin/python3'])).toEqual(['/usr/bin/python3']);
    expect(list.resolve(['/usr/bin/bash', '-c', 'x'])).toEqual(['/usr/bin/bash', '-c', 'x']);
    expect(list.names()).toEqual(['ls', 'python3']);
  });

  it.each([
    ['curl'],
    ['sh'],
    ['bash'],
    ['./python3'],
    ['../../usr/bin/python3'],
    ['/usr/bin/perl'],
    ['bin/ls'],
  ])('%s is refused', (program) => expect(() => list.resolve([program])).toThrow(/not an allowed program/));
});

describe('a job request', () => {
  const config = jobsConfigSchema.parse({ maxFiles: 3, maxFileBytes: 16 });
  const allow = new CommandAllowList(['python3'], () => true);
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const prepare = (req: Partial<JobRequest>) =>
    prepareJob({ command: 'python3 x.py', ...req }, config, allow);
  const refused = (req: Partial<JobRequest>, field: string, message?: RegExp) => {
    try {
      prepare(req);
    } catch (err) {
      expect(err).toBeInstanceOf(JobRequestError);
      expect((err as JobRequestError).field).toBe(field);
      if (message) expect((err as Error).message).toMatch(message);
      return;
    }
    throw new Error(`accepted ${JSON.stringify(req)}`);
  };

  it('takes defaults, clamps to the ceilings and merges the operator’s blocked ports', () => {
    const { spec, files } = prepare({
      timeout: 100_000,
      resources: { cpu: '500m', memory: '64Gi', disk: '100Mi' },
      network: { blocked_ports: [8080, 22] },
      files: [{ path: 'src/x.py', content: b64('print(1)'), mode: '0755' }],
      environment: { MY_VAR: 'v' },
    });
    expect(spec).toEqual({
      argv: ['/usr/bin/python3', 'x.py'],
      env: { MY_VAR: 'v' },
      limits: { timeoutMs: 600_000, cpus: 0.5, memoryBytes: 2 * 2 ** 30, diskBytes: 100 * 2 ** 20 },
      network: { outbound: false, allowedHosts: [], blockedPorts: [22, 25, 3306, 5432, 6379, 8080] },
    });
    expect(files).toEqual([{ path: 'src/x.py', content: b64('print(1)'), executable: true }]);
    expect(prepare({}).spec.limits).toEqual({
      timeoutMs: 30_000,
      cpus: 1,
      memoryBytes: 512 * 2 ** 20,
      diskBytes: 2 ** 30,
    });
  });

  it.each([['/etc/passwd'], ['../x'], ['a/../../x'], ['./x'], ['a//b'], ['a/'], ['x\0y'], [''], ['a/./b']])(
    'file path %j is refused',
    (path) => refused({ files: [{ path, content: '' }] }, 'files.0.path'),
  );

  it('refuses duplicate, conflicting, oversized, non-base64 and too many files', () => {
    refused(
      {
        files: [
          { path: 'a', content: '' },
          { path: 'a', content: '' },
        ],
      },
      'files.1.path',
      /twice/,
    );
    refused(
      {
        files: [
          { path: 'a', content: '' },
          { path: 'a/b', content: '' },
        ],
      },
      'files.1.path',
      /both/,
    );
    refused(
      {
        files: [
          { path: 'a/b', content: '' },
          { path: 'a', content: '' },
        ],
      },
      'files.1.path',
      /twice/,
    );
    refused({ files: [{ path: 'a', content: b64('x'.repeat(17)) }] }, 'files.0.content', /17 bytes/);
    refused({ files: [{ path: 'a', content: 'not base64!' }] }, 'files.0.content', /base64/);
    refused({ files: [{ path: 'a', content: '', mode: '9999' }] }, 'files.0.mode');
    refused({ files: ['a', 'b', 'c', 'd'].map((path) => ({ path, content: '' })) }, 'files', /at most 3/);
  });

  it.each([
    ['LD_PRELOAD'],
    ['ld_library_path'],
    ['PATH'],
    ['PYTHONPATH'],
    ['PYTHONSTARTUP'],
    ['NODE_OPTIONS'],
    ['BASH_ENV'],
    ['GLIBC_TUNABLES'],
    ['HTTPS_PROXY'],
    ['1ABC'],
    ['A-B'],
    ['A B'],
  ])('environment variable %s is refused', (name) =>
    refused({ environment: { [name]: 'x' } }, `environment.${name}`),
  );

  it('names the field of a bad quantity, command or network request', () => {
    refused({ resources: { memory: '1GB' } }, 'resources.memory', /Mi, Gi/);
    refused({ resources: { disk: 'big' } }, 'resources.disk');
    refused({ resources: { cpu: 'lots' } }, 'resources.cpu');
    refused({ command: 'bash -c id' }, 'command', /not an allowed program/);
    refused({ command: 'python3 x.py; id' }, 'command', /operator/);
    refused({ network: { outbound: true } }, 'network.allowed_hosts');
    refused({ network: { outbound: true, allowed_hosts: ['exa mple.com'] } }, 'network.allowed_hosts.0');
    const closed = jobsConfigSchema.parse({ network: { enabled: false } });
    expect(() =>
      prepareJob(
        { command: 'python3', network: { outbound: true, allowed_hosts: ['a.com'] } },
        closed,
        allow,
      ),
    ).toThrow(/disabled/);
    expect(
      prepare({ network: { outbound: true, allowed_hosts: ['*.Example.org'] } }).spec.network,
    ).toMatchObject({ outbound: true, allowedHosts: ['*.example.org'] });
  });
});

describe('the jobs ceilings', () => {
  it('are never above the sandbox’s own, so what a job is told is what it gets', () => {
    const defaults = configSchema.parse({}).jobs.maxLimits;
    expect(defaults).toMatchObject({ timeoutSeconds: 60, memoryBytes: 2 * 2 ** 30, cpu: 4 });
    const raised = configSchema.parse({
      sandbox: { maxLimits: { wallTimeMs: 3_600_000, memoryBytes: 8 * 2 ** 30, cpus: 16 } },
    }).jobs.maxLimits;
    expect(raised).toMatchObject({ timeoutSeconds: 600, memoryBytes: 2 * 2 ** 30, cpu: 4 });
    const allow = new CommandAllowList(['python3'], () => true);
    const { spec } = prepareJob({ command: 'python3', timeout: 300 }, configSchema.parse({}).jobs, allow);
    expect(spec.limits.timeoutMs).toBe(60_000);
  });
});

describe('a run’s verdict as a job’s outcome', () => {
  const spec = {
    argv: ['/usr/bin/true'],
    env: {},
    limits: { timeoutMs: 60_000, cpus: 4, memoryBytes: 2 ** 28, diskBytes: 2 ** 30 },
    network: { outbound: false, allowedHosts: [], blockedPorts: [] },
  };
  const run = (status: Parameters<typeof resultWithoutRun>[1], usage = { wallMs: 60_100, cpuMs: 100 }) => ({
    ...resultWithoutRun('bwrap', status),
    usage: { ...usage, peakMemoryBytes: 0 },
  });

  it('says which limit stopped it, and never blames the user for Warden', () => {
    expect(jobOutcome(run('timeout'), false, spec).error).toBe('the job ran past its time limit of 60 s');
    expect(jobOutcome(run('timeout', { wallMs: 15_000, cpuMs: 60_000 }), false, spec).error).toBe(
      'the job used up its CPU time (60.0 s)',
    );
    expect(jobOutcome(run('memory_limit_exceeded'), false, spec)).toMatchObject({ status: 'failed' });
    expect(jobOutcome({ ...run('failed'), exitCode: 2 }, false, spec).error).toBe(
      'the command exited with status 2',
    );
    expect(jobOutcome({ ...run('failed'), signal: 'SIGSEGV' }, false, spec).error).toBe(
      'the command was killed by SIGSEGV',
    );
    expect(jobOutcome(run('success'), true, spec)).toEqual({
      status: 'cancelled',
      error: 'cancelled by request',
    });
    expect(jobOutcome(run('error'), false, spec).status).toBe('error');
  });
});
