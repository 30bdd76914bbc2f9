import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const BIN = fileURLToPath(new URL('../../bin/warden.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'warden-cli-'));

function file(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

function warden(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, WARDEN_FROM_SOURCE: '1' },
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('warden run', () => {
  it('prints the RunResult as one JSON object with --json', () => {
    const input = file('in.txt', 'world');
    const r = warden(
      'run',
      file('hello.py', 'import sys\nprint("hello", sys.stdin.read())\n'),
      '--stdin',
      input,
      '--json',
    );
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result).toMatchObject({
      status: 'success',
      exitCode: 0,
      signal: null,
      stdout: 'hello world\n',
      stderr: '',
      truncated: { stdout: false, stderr: false },
      violations: [],
      backend: 'bwrap',
      isolation: 'namespaces',
      language: 'python',
    });
    expect(result.usage.wallMs).toBeGreaterThan(0);
    expect(result.usage.cpuMs).toBeGreaterThanOrEqual(0);
    expect(result.usage.peakMemoryBytes).toBeGreaterThan(0);
  });

  it('exits 0 whatever the verdict and applies --memory and --timeout', () => {
    const hog = warden(
      'run',
      file('hog.js', 'const a = []; for (;;) { a.push(Buffer.alloc(1 << 24, 1)); }\n'),
      '--memory',
      '96',
      '--json',
      '--no-analysis',
    );
    expect(hog.code).toBe(0);
    expect(JSON.parse(hog.stdout).status).toBe('memory_limit_exceeded');
    const slow = warden(
      'run',
      file('slow.py', 'import time\ntime.sleep(30)\n'),
      '--timeout',
      '0.5',
      '--json',
    );
    expect(slow.code).toBe(0);
    expect(JSON.parse(slow.stdout).status).toBe('timeout');
  });

  it('rejects dangerous code before any sandbox, unless --no-analysis', () => {
    const path = file('evil.py', 'import os\nos.system("echo from-shell")\n');
    const checked = JSON.parse(warden('run', path, '--json').stdout);
    expect(checked.status).toBe('security_violation');
    expect(checked.stdout).toBe('');
    expect(checked.analysis.rejected.length).toBeGreaterThan(0);
    const unchecked = JSON.parse(warden('run', path, '--json', '--no-analysis').stdout);
    expect(unchecked.status).toBe('success');
    expect(unchecked.stdout).toBe('from-shell\n');
  });

  it('runs TypeScript', () => {
    const r = warden('run', file('t.ts', 'const n: number = 21;\nconsole.log(n * 2);\n'), '--json');
    expect(JSON.parse(r.stdout)).toMatchObject({ status: 'success', stdout: '42\n' });
  });

  it.each([
    [['run', '/nonexistent/x.py'], /cannot read/],
    [['run', join(dir, 'hello.py'), '--lang', 'cobol'], /unknown language/],
    [['run', join(dir, 'hello.py'), '--timeout', '-1'], /--timeout must be a positive number/],
    [['run', join(dir, 'hello.py'), '--bogus'], /unknown option/],
    [['run'], /missing required argument/],
  ])('exits 2 for bad usage: %j', (args, message) => {
    file('hello.py', 'print(1)');
    const r = warden(...args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  });
});

describe('warden validate', () => {
  it('exits 0 for safe code and 3 for rejected code', () => {
    expect(warden('validate', file('ok.py', 'print(sum(range(10)))\n')).code).toBe(0);
    const bad = warden('validate', file('bad.js', "require('child_process').execSync('id');\n"), '--json');
    expect(bad.code).toBe(3);
    const report = JSON.parse(bad.stdout);
    expect(report.safe).toBe(false);
    expect(report.language).toBe('javascript');
    expect(report.violations[0]).toMatchObject({ line: 1 });
  });

  it('refuses code over the size limit with exit 2', () => {
    const r = warden('validate', file('huge.py', `x = 1\n`.repeat(10_000)));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/limit/);
  });
});

describe('warden doctor', () => {
  it('reports the backends and exits 0 when the default works', () => {
    const r = warden('doctor', '--json');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.defaultBackend).toBe('bwrap');
    expect(report.backends.find((b: { backend: string }) => b.backend === 'bwrap').available).toBe(true);
    expect(report.runtimes.map((x: { language: string }) => x.language)).toEqual([
      'python',
      'javascript',
      'typescript',
    ]);
  });

  it('exits non-zero when the configured default backend cannot run', () => {
    // A Docker socket that answers nothing: a backend this host surely cannot run.
    const config = file(
      'warden.yaml',
      'sandbox:\n  backend: docker\n  docker:\n    socketPath: /nonexistent/docker.sock\n',
    );
    const r = warden('--config', config, 'doctor');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/docker does not work/);
  });

  it('names the bad key of an invalid config', () => {
    const config = file('bad.yaml', 'sandbox:\n  limits:\n    memoryBytes: -5\n');
    const r = warden('--config', config, 'doctor');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/sandbox\.limits\.memoryBytes/);
  });
});
