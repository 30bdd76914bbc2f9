import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  NOTHING_LEFT,
  cgroupParentDirs,
  hostProcesses,
  reportUnavailable,
  runCode,
  sandboxBackends,
  settledLeftovers,
  waitFor,
  testEngine,
} from './helpers.js';
import { sandboxConfigSchema } from '../../src/config/schema.js';
import { createEngine, type Engine } from '../../src/sandbox/engine.js';
import { LANGUAGES, buildRun, languageSandbox } from '../../src/languages/index.js';

/**
 * What is particular to the gvisor backend (the attack suite runs on it like on every backend): its
 * kernel dying under a run, pre-started sandboxes handed their code through runsc, and nothing of a
 * sandbox left behind (runsc state, bundle, cgroup, processes).
 */

const GVISOR_DIR = '/run/warden/gvisor';
const ROOT = process.getuid?.() === 0;
const mine = (name: string) => name.startsWith(`${process.pid}-`);

/** runsc containers, bundles and state files of this test process. */
function gvisorLeftovers(): string[] {
  const state = `${GVISOR_DIR}/state`;
  const listed = existsSync(state)
    ? execFileSync('/usr/bin/runsc', [`--root=${state}`, 'list', '-quiet'], { encoding: 'utf8' })
        .split('\n')
        .filter(mine)
    : [];
  const dirs = [`${GVISOR_DIR}/bundles`, state].flatMap((d) =>
    existsSync(d) ? readdirSync(d).filter(mine) : [],
  );
  return [...listed, ...dirs];
}

/** The gVisor kernel processes (runsc-sandbox) started by this test process. */
function ourSentries(): number[] {
  const parent = (pid: number) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    } catch {
      return 0;
    }
  };
  return hostProcesses()
    .filter((p) => p.cmdline.startsWith('runsc-sandbox '))
    .map((p) => p.pid)
    .filter((pid) => {
      for (let p = parent(pid); p > 1; p = parent(p)) if (p === process.pid) return true;
      return false;
    });
}

const { available, unavailable } = await sandboxBackends();
reportUnavailable(
  'the gvisor tests',
  unavailable.filter((u) => u.backend === 'gvisor'),
  it,
);

describe.runIf(available.includes('gvisor'))('gvisor backend', () => {
  let engine: Engine;
  beforeAll(() => {
    engine = testEngine({ backend: 'gvisor' });
  });
  afterAll(async () => {
    await engine.shutdown();
  });

  it.runIf(existsSync('/dev/kvm'))(
    'choosing the platform (trying KVM for a few seconds) leaves no process behind, whatever KVM did',
    async () => {
      const kvm = () =>
        new Set(
          hostProcesses()
            .filter((p) => p.cmdline.includes('--platform=kvm'))
            .map((p) => p.pid),
        );
      const before = kvm();
      // A fresh state dir: the choice is made again (it is kept there once made).
      const fresh = createEngine(sandboxConfigSchema.parse({ backend: 'gvisor', pool: { size: 0 } }), {
        runtimeDir: mkdtempSync(join(tmpdir(), 'warden-kvm-')),
      });
      try {
        const probe = (await fresh.probe()).find((p) => p.backend === 'gvisor');
        expect(probe?.detail).toMatch(/platform (kvm|ptrace)/);
      } finally {
        await fresh.shutdown();
      }
      // Other test files may be choosing at the same time: theirs end within their own seconds.
      expect(await waitFor(() => [...kvm()].every((pid) => before.has(pid)), 15_000)).toBe(true);
    },
  );

  it('a sandbox whose kernel is killed from outside mid-run ends in error with a reason, leaving nothing', async () => {
    const stop = new AbortController();
    let up!: () => void;
    const running = new Promise<void>((resolve) => (up = resolve));
    const run = engine.run(
      {
        ...(await buildRun(LANGUAGES.python, 'import time\nprint("up", flush=True)\ntime.sleep(60)\n', {
          limits: { wallTimeMs: 60_000 },
        })),
        signal: stop.signal,
        onOutput: () => up(),
      },
      { backend: 'gvisor' },
    );
    await running;
    const sentries = ourSentries();
    expect(sentries).toHaveLength(1);
    process.kill(sentries[0]!, 'SIGKILL');
    const r = await run;
    stop.abort();
    expect(r.status).toBe('error');
    expect(r.error).toMatch(/gVisor sandbox ended before the program did/);
    await engine.settle();
    expect(await settledLeftovers()).toEqual(NOTHING_LEFT);
    expect(gvisorLeftovers()).toEqual([]);
  });

  it('a run Warden stops (time limit) leaves no runsc state, bundle, cgroup or process', async () => {
    const r = await runCode(engine, 'python', 'import time\ntime.sleep(60)\n', {
      limits: { wallTimeMs: 500 },
      backend: 'gvisor',
    });
    expect(r.status).toBe('timeout');
    await engine.settle();
    expect(await settledLeftovers()).toEqual(NOTHING_LEFT);
    expect(gvisorLeftovers()).toEqual([]);
  });

  it('a pre-started sandbox takes its code and stdin when the run begins', async () => {
    const pooled = testEngine({ backend: 'gvisor', pool: { size: 1 } });
    try {
      pooled.prewarm(languageSandbox(LANGUAGES.python), 1);
      expect(await pooled.poolReady(30_000)).toBe(true);
      const r = await runCode(pooled, 'python', 'import sys\nprint(sys.stdin.read().upper())\n', {
        stdin: 'hello',
      });
      expect(r).toMatchObject({ status: 'success', stdout: 'HELLO\n', pooled: true, backend: 'gvisor' });
      expect(r.isolation).toBe('gvisor');
    } finally {
      await pooled.shutdown();
    }
    expect(await settledLeftovers()).toEqual(NOTHING_LEFT);
    expect(gvisorLeftovers()).toEqual([]);
  });

  it('a run ends with its program: status and whole output, a lookalike trailer is output, what it left is gone', async () => {
    const r = await runCode(
      engine,
      'python',
      [
        'import os, sys',
        // A process left behind with the run's stdout and stderr open; the run does not wait for it.
        'if os.fork() == 0:',
        '    os.execv("/bin/sleep", ["sleep", "4242"])',
        'print("0123456789abcdef01 0")',
        'print("err", file=sys.stderr)',
        'sys.exit(3)',
      ].join('\n'),
      { backend: 'gvisor' },
    );
    expect(r).toMatchObject({ status: 'failed', exitCode: 3, signal: null });
    expect(r.stdout).toBe('0123456789abcdef01 0\n');
    expect(r.stderr).toBe('err\n');
    await engine.settle();
    expect(await settledLeftovers()).toEqual(NOTHING_LEFT);
    expect(gvisorLeftovers()).toEqual([]);
  });

  it("a forked child's forbidden call makes the run a security_violation, though its parent exits 0", async () => {
    const r = await runCode(
      engine,
      'python',
      [
        'import ctypes, os',
        'pid = os.fork()',
        'if pid == 0:',
        '    ctypes.CDLL(None).syscall(101, 0, 0, 0, 0)',
        '    os._exit(0)',
        '_, status = os.waitpid(pid, 0)',
        'print("child signal", os.WTERMSIG(status) if os.WIFSIGNALED(status) else None)',
      ].join('\n'),
      { backend: 'gvisor' },
    );
    expect(r.stdout).toBe('child signal 31\n');
    expect(r.exitCode).toBe(0);
    expect(r.status).toBe('security_violation');
    expect(r.violations).toEqual([expect.objectContaining({ rule: 'forbidden_syscall' })]);
    // Its neighbour, which calls nothing forbidden, has none.
    const fine = await runCode(
      engine,
      'python',
      'import os\nif os.fork() == 0:\n    os._exit(0)\nos.wait()',
      {
        backend: 'gvisor',
      },
    );
    expect(fine).toMatchObject({ status: 'success', violations: [] });
  });

  it('a program killed by a signal is reported with that signal', async () => {
    const r = await runCode(engine, 'python', 'import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n', {
      backend: 'gvisor',
    });
    expect(r).toMatchObject({ status: 'failed', exitCode: null, signal: 'SIGTERM' });
  });

  it('a run naming gvisor on a bwrap service is served by its pool of gvisor sandboxes', async () => {
    const service = testEngine({ backend: 'bwrap', pool: { size: 1 }, pools: { gvisor: { size: 1 } } });
    try {
      service.prewarm(languageSandbox(LANGUAGES.python), 1);
      // The first run on gvisor starts cold and opens that backend's pool.
      const first = await runCode(service, 'python', 'print(1)', { backend: 'gvisor' });
      expect(first).toMatchObject({ status: 'success', backend: 'gvisor', pooled: false });
      expect(await service.poolReady(60_000)).toBe(true);
      expect(service.poolSizes()).toMatchObject({ python: 1, 'gvisor/python': 1 });
      const second = await runCode(service, 'python', 'print(2)', { backend: 'gvisor' });
      expect(second).toMatchObject({ status: 'success', stdout: '2\n', backend: 'gvisor', pooled: true });
      const local = await runCode(service, 'python', 'print(3)');
      expect(local).toMatchObject({ status: 'success', backend: 'bwrap', pooled: true });
    } finally {
      await service.shutdown();
    }
    expect(await settledLeftovers()).toEqual(NOTHING_LEFT);
    expect(gvisorLeftovers()).toEqual([]);
  });

  it('writes the run files into the working dir, writable and size-capped like bwrap', async () => {
    const r = await engine.run(
      {
        argv: ['/bin/sh', '-c', 'cat data.txt; ./tool.sh; echo more >> data.txt && cat data.txt'],
        files: [
          { path: 'data.txt', content: 'given\n' },
          { path: 'tool.sh', content: '#!/bin/sh\necho tool ran\n', executable: true },
        ],
      },
      { backend: 'gvisor' },
    );
    expect(r.status).toBe('success');
    expect(r.stdout).toBe('given\ntool ran\ngiven\nmore\n');
  });

  it.runIf(ROOT)(
    'a service killed mid-run: its sandbox dies with it, the next start removes the rest',
    async () => {
      const script = fileURLToPath(new URL('./crashing-service.ts', import.meta.url));
      // A cgroup parent of this test's own: other Warden processes starting meanwhile remove orphans
      // under the default parent and would take this test's evidence away.
      const cgroupParent = `warden-crash-${process.pid}`;
      const child = spawn(process.execPath, ['--import', 'tsx', script, cgroupParent, 'gvisor'], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
      const pid = child.pid!;
      const theirs = () => readdirSync(`${GVISOR_DIR}/bundles`).filter((n) => n.startsWith(`${pid}-`));
      expect(theirs()).toHaveLength(1);
      const gone = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await gone; // reaped: a zombie would still count as a live owner
      // runsc dies with the service (parent-death signal), gVisor's kernel and gofer with runsc.
      const sentry = (p: { cmdline: string }) =>
        p.cmdline.startsWith('runsc-sandbox ') && p.cmdline.includes(` ${pid}-`);
      expect(await waitFor(() => !hostProcesses().some(sentry))).toBe(true);
      const parents = cgroupParentDirs(cgroupParent);
      const cgroups = () =>
        parents.flatMap((d) => (existsSync(d) ? readdirSync(d) : []).filter((n) => n.startsWith(`${pid}-`)));
      expect(cgroups().length).toBeGreaterThan(0);
      const next = testEngine({ cgroupParent });
      try {
        const removed = (await next.cleanupOrphansByBackend()).gvisor ?? [];
        expect(removed.some((r) => r.includes(` ${pid}-`))).toBe(true);
      } finally {
        await next.shutdown();
      }
      expect(theirs()).toEqual([]);
      expect(cgroups()).toEqual([]);
      for (const d of parents) if (existsSync(d)) rmdirSync(d);
    },
  );
});
