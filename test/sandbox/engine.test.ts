import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MiB, cgroupParentDirs, hostProcesses, runCode, sleep, testEngine, waitFor } from './helpers.js';
import { asJobRun, prepareNonRoot, type NonRoot } from './nonroot.js';
import { LANGUAGES, buildRun, languageSandbox } from '../../src/languages/index.js';
import type { SandboxSpec } from '../../src/sandbox/types.js';

const ROOT = process.getuid?.() === 0;

/** Pool sandboxes start under small limits; the runs below ask for more. */
const POOL_DEFAULTS = { cpuTimeMs: 1000, memoryBytes: 128 * MiB };
const BIG_LIMITS = { memoryBytes: 600 * MiB, cpuTimeMs: 8000, wallTimeMs: 30_000 };
/** 400 MiB held while burning 1.5 s of CPU: over both pool defaults, well within BIG_LIMITS. */
const BIG_AND_LONG = [
  'import time',
  'x = bytearray(400 * 1024 * 1024)',
  't = time.process_time()',
  'while time.process_time() - t < 1.5:',
  '    pass',
  'print(len(x))',
].join('\n');
const TOO_BIG = 'x = bytearray(700 * 1024 * 1024)\nprint(len(x))';

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

  it('gives Python what site would (dist-packages, exit/quit/help) though it starts without site', async () => {
    const paths = 'import sys\nprint(" ".join(p for p in sys.path if p.endswith("dist-packages")))';
    const r = await runCode(
      engine,
      'python',
      `${paths}\nprint(type(help).__name__, "site" in sys.modules)\nexit(3)`,
    );
    // The host's own interpreter, started with site, names the same system dist-packages (the
    // sandbox has no /usr/local).
    const host = spawnSync('/usr/bin/python3', ['-I', '-c', paths], { encoding: 'utf8' })
      .stdout.trim()
      .split(' ');
    const expected = host.filter((p) => p !== '' && !p.startsWith('/usr/local/'));
    expect(expected.length).toBeGreaterThan(0);
    expect(r.stdout).toBe(`${expected.join(' ')}\n_Helper False\n`);
    expect(r).toMatchObject({ status: 'failed', exitCode: 3 });
    const q = await runCode(engine, 'python', 'print("a")\nquit()\nprint("b")');
    expect(q).toMatchObject({ status: 'success', stdout: 'a\n' });
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
      // Not synchronisation: the wait itself is what must not be charged.
      await sleep(1500);
      const r = await engine.run(await buildRun(LANGUAGES.javascript, 'console.log(1)'));
      expect(r.pooled).toBe(true);
      expect(r.usage.wallMs).toBeLessThan(1500);
    } finally {
      await engine.shutdown();
    }
  });
});

describe.runIf(ROOT)('a pooled run with cgroups', () => {
  it('gets exactly the memory and CPU time it asks for, not the pool defaults', async () => {
    const engine = testEngine({
      pool: { size: 1, perLanguage: {}, maxIdleMs: 60_000 },
      limits: POOL_DEFAULTS,
    });
    try {
      engine.prewarm(languageSandbox(LANGUAGES.python), 1);
      expect(await engine.poolReady(20_000)).toBe(true);
      const big = await engine.run(await buildRun(LANGUAGES.python, BIG_AND_LONG, { limits: BIG_LIMITS }));
      expect(big).toMatchObject({ status: 'success', stdout: '419430400\n', pooled: true });
      expect(await engine.poolReady(20_000)).toBe(true);
      const over = await engine.run(await buildRun(LANGUAGES.python, TOO_BIG, { limits: BIG_LIMITS }));
      expect(over).toMatchObject({ status: 'memory_limit_exceeded', pooled: true });
    } finally {
      await engine.shutdown();
    }
  });
});

describe.runIf(ROOT)("a pre-started sandbox already over the run's memory limit", () => {
  it('ends the run as memory_limit_exceeded, not as an error of Warden', async () => {
    const engine = testEngine({ pool: { size: 1, perLanguage: {}, maxIdleMs: 60_000 } });
    // Holds 48 MiB while it waits for its run (cgroup v1 refuses a lower limit: EBUSY; v2 OOM-kills).
    const hog: SandboxSpec = {
      argv: ['/usr/bin/python3', '-c', 'import os\nx = bytearray(48 << 20)\nos.read(3, 1)\nprint("ran")'],
      label: 'hog',
    };
    try {
      engine.prewarm(hog, 1);
      expect(await engine.poolReady(20_000)).toBe(true);
      const r = await engine.run({ ...hog, limits: { memoryBytes: 16 * MiB } });
      expect(r).toMatchObject({ status: 'memory_limit_exceeded', pooled: true });
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
    // A cgroup parent of this test's own: other Warden processes starting up meanwhile (other tests)
    // remove orphans under the default parent and would take this test's evidence away.
    const cgroupParent = `warden-crash-${process.pid}`;
    const child = spawn(process.execPath, ['--import', 'tsx', script, cgroupParent], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    // The child prints once its sandbox is running, then we kill it without any chance to clean up.
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    const pid = child.pid!;
    const gone = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await gone; // reaped: a zombie would still count as a live owner
    // die-with-parent: the sandbox goes with the service, without any clean-up code of ours running.
    await waitFor(() => hostProcesses().every((p) => !p.cmdline.includes('sleep 5151')));
    expect(hostProcesses().filter((p) => p.cmdline.includes('sleep 5151'))).toEqual([]);
    const parents = cgroupParentDirs(cgroupParent);
    expect(parents.length).toBeGreaterThan(0);
    const left = () =>
      parents.flatMap((d) => (existsSync(d) ? readdirSync(d) : []).filter((n) => n.startsWith(`${pid}-`)));
    expect(left().length).toBeGreaterThan(0);
    const engine = testEngine({ cgroupParent });
    const removed = await engine.cleanupOrphans();
    expect(removed.some((d) => d.includes(`/${pid}-`))).toBe(true);
    expect(left()).toEqual([]);
    for (const d of parents) if (existsSync(d)) rmdirSync(d);
  });
});

describe.runIf(ROOT)('without root', () => {
  // The engine itself runs as an unprivileged user: user namespaces only, no cgroups, rlimits.
  let nonRoot: NonRoot;
  beforeAll(async () => {
    nonRoot = await prepareNonRoot();
  });
  afterAll(() => nonRoot.dispose());

  it('still isolates, falls back to rlimits and says so', async (ctx) => {
    if ('skip' in nonRoot) return ctx.skip(nonRoot.skip);
    const limits = { cpuTimeMs: 1000 };
    const [ok, loop] = nonRoot.run({
      config: { pool: { size: 0 } },
      runs: [
        asJobRun(
          await buildRun(LANGUAGES.python, 'import os\nprint(os.getuid(), os.path.exists("/root"))', {
            limits,
          }),
        ),
        asJobRun(await buildRun(LANGUAGES.python, 'while True: pass', { limits })),
      ],
    });
    expect(ok).toMatchObject({ status: 'success', stdout: '65534 False\n', isolation: 'namespaces' });
    expect(ok!.warnings.join(' ')).toMatch(/no cgroups/);
    expect(loop!.status).toBe('timeout');
    expect(loop!.usage.cpuMs).toBeGreaterThan(500);
  });

  it('takes a pre-started sandbox only for runs whose rlimits are the ones it started with', async (ctx) => {
    if ('skip' in nonRoot) return ctx.skip(nonRoot.skip);
    const [plain, big, over] = nonRoot.run({
      config: { pool: { size: 1 }, limits: POOL_DEFAULTS },
      prewarm: languageSandbox(LANGUAGES.python),
      runs: [
        asJobRun(await buildRun(LANGUAGES.python, 'print("plain")')),
        asJobRun(await buildRun(LANGUAGES.python, BIG_AND_LONG, { limits: BIG_LIMITS })),
        asJobRun(await buildRun(LANGUAGES.python, TOO_BIG, { limits: BIG_LIMITS })),
      ],
    });
    expect(plain).toMatchObject({ status: 'success', stdout: 'plain\n', pooled: true });
    // rlimits are fixed when a sandbox starts: these runs start their own, under their own limits.
    expect(big).toMatchObject({ status: 'success', stdout: '419430400\n', pooled: false });
    expect(over).toMatchObject({ status: 'failed', pooled: false });
    expect(over!.stderr).toContain('MemoryError');
  });
});
