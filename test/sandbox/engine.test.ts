import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { hostProcesses, runCode, sleep, testEngine } from './helpers.js';
import { LANGUAGES, buildRun, languageSandbox } from '../../src/languages/index.js';
import type { RunResult } from '../../src/sandbox/types.js';

const ROOT = process.getuid?.() === 0;

describe('languages', () => {
  const engine = testEngine();

  it.each([
    ['python', 'import sys\nprint("hello", sys.stdin.read().strip())\n'],
    ['javascript', "process.stdin.on('data', (d) => console.log('hello', String(d).trim()));\n"],
    [
      'typescript',
      "const greet = (who: string): string => `hello ${who}`;\nprocess.stdin.on('data', (d) => console.log(greet(String(d).trim())));\n",
    ],
  ] as const)('%s reads stdin and prints', async (language, code) => {
    const r = await runCode(engine, language, code, { stdin: 'world\n' });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('hello world\n');
    expect(r.status).toBe('success');
    expect(r.isolation).toBe('namespaces');
  });

  it('runs JavaScript written as an ES module', async () => {
    const r = await runCode(
      engine,
      'javascript',
      "import { platform } from 'node:os';\nconsole.log(typeof platform());\n",
    );
    expect(r.stdout).toBe('string\n');
  });

  it('reports a non-zero exit as failed with the traceback in the user file', async () => {
    const r = await runCode(engine, 'python', 'def f():\n    raise ValueError("boom")\nf()\n');
    expect(r.status).toBe('failed');
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('File "/box/main.py", line 2, in f');
    expect(r.stderr).not.toContain('<string>');
  });

  it('keeps TypeScript error lines pointing at the TypeScript source', async () => {
    const r = await runCode(
      engine,
      'typescript',
      'type T = { a: number };\nconst t: T = { a: 1 };\nthrow new Error("at line three " + t.a);\n',
    );
    expect(r.status).toBe('failed');
    expect(r.stderr).toContain('main.ts:3');
  });
});

describe('pool', () => {
  it('serves runs from pre-started sandboxes, each used once', async () => {
    const engine = testEngine({ pool: { size: 2, perLanguage: {}, maxIdleMs: 60_000 } });
    try {
      engine.prewarm(languageSandbox(LANGUAGES.python), 2);
      expect(await engine.poolReady(10_000)).toBe(true);
      const first = await engine.run(
        await buildRun(LANGUAGES.python, 'open("/tmp/left", "w").write("x")\nprint("one")'),
      );
      const second = await engine.run(
        await buildRun(LANGUAGES.python, 'import os\nprint(os.path.exists("/tmp/left"))'),
      );
      expect(first).toMatchObject({ status: 'success', pooled: true, stdout: 'one\n' });
      expect(second).toMatchObject({ status: 'success', pooled: true, stdout: 'False\n' });
      // Refilled in the background.
      expect(await engine.poolReady(10_000)).toBe(true);
    } finally {
      await engine.shutdown();
    }
  });

  it('applies the run limits to a pre-started sandbox', async () => {
    const engine = testEngine({ pool: { size: 1, perLanguage: {}, maxIdleMs: 60_000 } });
    try {
      engine.prewarm(languageSandbox(LANGUAGES.python), 1);
      await engine.poolReady(10_000);
      const spec = await buildRun(LANGUAGES.python, 'import time\ntime.sleep(5)', {
        limits: { wallTimeMs: 300 },
      });
      const r = await engine.run(spec);
      expect(r.pooled).toBe(true);
      expect(r.status).toBe('timeout');
      expect(r.usage.wallMs).toBeLessThan(2000);
      // Raising and lowering the memory limit of a pre-started sandbox (cgroup v1 orders its writes).
      await engine.poolReady(10_000);
      const big = await engine.run(
        await buildRun(LANGUAGES.python, 'x = bytearray(400 * 1024 * 1024)\nprint(len(x))', {
          limits: { memoryBytes: 600 * 1024 * 1024 },
        }),
      );
      expect(big).toMatchObject({ pooled: true, status: 'success', stdout: '419430400\n' });
      await engine.poolReady(10_000);
      const small = await engine.run(
        await buildRun(LANGUAGES.python, 'x = bytearray(100 * 1024 * 1024)\nprint(len(x))', {
          limits: { memoryBytes: 64 * 1024 * 1024 },
        }),
      );
      expect(small).toMatchObject({ pooled: true, status: 'memory_limit_exceeded' });
    } finally {
      await engine.shutdown();
    }
  });

  it('does not charge the wait in the pool to the run', async () => {
    const engine = testEngine({ pool: { size: 1, perLanguage: {}, maxIdleMs: 60_000 } });
    try {
      engine.prewarm(languageSandbox(LANGUAGES.javascript), 1);
      await engine.poolReady(10_000);
      await sleep(300);
      const r = await engine.run(await buildRun(LANGUAGES.javascript, 'console.log(1)'));
      expect(r.pooled).toBe(true);
      expect(r.usage.wallMs).toBeLessThan(250);
    } finally {
      await engine.shutdown();
    }
  });
});

describe('process backend', () => {
  it('runs but says it gives no isolation', async () => {
    const engine = testEngine({ backend: 'process' });
    const r = await runCode(engine, 'python', 'print(6 * 7)', { backend: 'process' });
    expect(r).toMatchObject({ status: 'success', stdout: '42\n', isolation: 'none', backend: 'process' });
    expect(r.warnings.join(' ')).toMatch(/no isolation/);
    const slow = await runCode(engine, 'python', 'while True: pass', {
      backend: 'process',
      limits: { cpuTimeMs: 500 },
    });
    expect(slow.status).toBe('timeout');
  });
});

describe.runIf(ROOT)('a crash of the service', () => {
  it('takes its sandboxes down and the next start removes what is left', async () => {
    const script = fileURLToPath(new URL('./crashing-service.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    // The child prints once its sandbox is running, then we kill it without any chance to clean up.
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    const pid = child.pid!;
    child.kill('SIGKILL');
    await sleep(300);
    expect(hostProcesses().filter((p) => p.cmdline.includes('sleep 5151'))).toEqual([]);
    const engine = testEngine();
    const removed = await engine.cleanupOrphans();
    expect(removed.some((d) => d.includes(`/${pid}-`))).toBe(true);
    for (const c of ['memory', 'pids']) {
      const dir = `/sys/fs/cgroup/${c}/warden`;
      if (existsSync(dir)) expect(readdirSync(dir).filter((n) => n.startsWith(`${pid}-`))).toEqual([]);
    }
  });
});

describe.runIf(ROOT)('without root', () => {
  // The engine itself runs as an unprivileged user: user namespaces only, no cgroups, rlimits.
  function runAsNobody(code: string) {
    const dir = mkdtempSync(join(tmpdir(), 'warden-nonroot-'));
    chmodSync(dir, 0o777);
    const tsx = fileURLToPath(new URL('../../node_modules/tsx/dist/esm/index.mjs', import.meta.url));
    const script = fileURLToPath(new URL('./nonroot-run.ts', import.meta.url));
    const r = spawnSync(
      '/usr/bin/setpriv',
      [
        '--reuid=65534',
        '--regid=65534',
        '--clear-groups',
        '--',
        process.execPath,
        '--import',
        tsx,
        script,
        join(dir, 'run'),
        code,
      ],
      { cwd: dir, env: { PATH: '/usr/bin:/bin', HOME: dir }, encoding: 'utf8', timeout: 30_000 },
    );
    return JSON.parse(r.stdout) as RunResult;
  }

  it('still isolates, falls back to rlimits and says so', () => {
    const ok = runAsNobody('import os\nprint(os.getuid(), os.path.exists("/root"))');
    expect(ok).toMatchObject({ status: 'success', stdout: '65534 False\n', isolation: 'namespaces' });
    expect(ok.warnings.join(' ')).toMatch(/no cgroups/);
    const loop = runAsNobody('while True: pass');
    expect(loop.status).toBe('timeout');
    expect(loop.usage.cpuMs).toBeGreaterThan(500);
  });
});
