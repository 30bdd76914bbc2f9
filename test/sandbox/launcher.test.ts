import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sandboxConfigSchema } from '../../src/config/schema.js';
import { LANGUAGES, buildRun } from '../../src/languages/index.js';
import { createBwrapBackend } from '../../src/sandbox/backends/bwrap.js';
import { LAUNCHER } from '../../src/sandbox/spawner.js';
import type { Engine } from '../../src/sandbox/engine.js';
import { resolveLimits } from '../../src/sandbox/limits.js';
import { NOTHING_LEFT, cgroupParentDirs, settledLeftovers, testEngine } from './helpers.js';

/**
 * The bwrap backend's launcher (src/sandbox/launcher/warden-launch.c): what it does to the process
 * that becomes bwrap, seen from inside a real run and from the host, and how it fails.
 */

const ROOT = process.getuid?.() === 0;
const UID_BASE = 640_000;
const ZERO_CAPS = '0000000000000000';

/** The launcher run directly on a command, with `extra` descriptors (3, 4, …) open in it. */
function launch(args: string[], command: string[], extra = 0) {
  return spawnSync(LAUNCHER, [...args, '--', ...command], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe', ...Array.from({ length: extra }, () => 'pipe' as const)],
  });
}

/** A `/proc/<pid>/status` text as a map of its fields. */
function statusFields(text: string): Record<string, string> {
  return Object.fromEntries(
    text
      .trim()
      .split('\n')
      .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]),
  );
}

describe('the launcher binary', () => {
  it('keeps the descriptors it is told to, sets the rlimits, then execs the command', () => {
    const probe = [
      'import os, resource',
      'for fd in (3, 4, 5):',
      '    try:',
      '        os.fstat(fd)',
      '        print(fd, "open")',
      '    except OSError:',
      '        print(fd, "closed")',
      'print(resource.getrlimit(resource.RLIMIT_FSIZE), resource.getrlimit(resource.RLIMIT_CPU))',
    ].join('\n');
    const r = launch(
      ['--keep-fds', '3', '--rlimit', 'fsize=4096', '--rlimit', 'cpu=5:6'],
      ['/usr/bin/python3', '-I', '-c', probe],
      3,
    );
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('3 open\n4 closed\n5 closed\n(4096, 4096) (5, 6)\n');
  });

  it('fails closed, naming the step, without running the command', () => {
    const marker = mkdtempSync(join(tmpdir(), 'warden-launch-'));
    try {
      const ran = ['/usr/bin/python3', '-I', '-c', `open(${JSON.stringify(join(marker, 'ran'))}, "w")`];
      const cases: [string[], RegExp][] = [
        [['--keep-fds', '2', '--cgroup', join(marker, 'no', 'cgroup.procs')], /no\/cgroup\.procs/],
        [['--keep-fds', '2', '--uid', '0', '--gid', '0'], /never 0/],
        [['--keep-fds', '2', '--uid', '640000'], /go together/],
        [['--keep-fds', '2', '--rlimit', 'stack=1'], /unknown rlimit/],
        [['--keep-fds', '2', '--rlimit', 'cpu=6:5'], /soft limit above hard/],
        [['--keep-fds', '2', '--rlimit', 'cpu=-1'], /expected a number/],
      ];
      for (const [args, message] of cases) {
        const r = launch(args, ran);
        expect(r.status).toBe(125);
        expect(r.stderr).toMatch(message);
      }
      expect(readdirSync(marker)).toEqual([]);
    } finally {
      rmSync(marker, { recursive: true, force: true });
    }
  });
});

describe.runIf(ROOT)('a bwrap run started by the launcher', () => {
  let engine: Engine;
  beforeAll(() => {
    engine = testEngine();
  });
  afterAll(async () => {
    await engine.shutdown();
  });

  it('is its leased uid with no groups and no capabilities, inside its own cgroup from the host', async () => {
    const program = 'import time\nprint(open("/proc/self/status").read(), flush=True)\ntime.sleep(60)\n';
    const spec = await buildRun(LANGUAGES.python, program, { limits: { wallTimeMs: 90_000 } });
    const abort = new AbortController();
    let up!: () => void;
    const printed = new Promise<void>((resolve) => (up = resolve));
    const run = engine.run({ ...spec, signal: abort.signal, onOutput: () => up() }, { backend: 'bwrap' });
    await printed;

    // From the host: every process of the run sits in the run's cgroup of each hierarchy, as the
    // leased uid (real, effective, saved, fs), with no supplementary group and no capability at all.
    const leases = readdirSync('/run/warden/uids').filter(
      (f) => readFileSync(join('/run/warden/uids', f), 'utf8') === String(process.pid),
    );
    expect(leases).toHaveLength(1);
    const uid = leases[0]!;
    expect(Number(uid)).toBeGreaterThanOrEqual(UID_BASE);
    const runCgroups = cgroupParentDirs().flatMap((parent) =>
      readdirSync(parent)
        .filter((n) => n.startsWith(`${process.pid}-`))
        .map((n) => join(parent, n)),
    );
    expect(runCgroups.length).toBeGreaterThan(0);
    const members = runCgroups.map((dir) =>
      readFileSync(join(dir, 'cgroup.procs'), 'utf8').trim().split('\n').map(Number).sort(),
    );
    // bwrap, its init in the new pid namespace, and the program: in every hierarchy alike.
    expect(members[0]!.length).toBeGreaterThanOrEqual(3);
    for (const m of members) expect(m).toEqual(members[0]);
    const commands = members[0]!.map((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0]);
    expect(commands).toContain('/usr/bin/bwrap');
    expect(commands).toContain('/usr/bin/python3');
    for (const pid of members[0]!) {
      const s = statusFields(readFileSync(`/proc/${pid}/status`, 'utf8'));
      expect(s.Uid!.split(/\s+/)).toEqual([uid, uid, uid, uid]);
      expect(s.Gid!.split(/\s+/)).toEqual([uid, uid, uid, uid]);
      expect(s.Groups).toBe('');
      for (const set of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) expect(s[set]).toBe(ZERO_CAPS);
    }

    abort.abort();
    const result = await run;
    // From inside: the sandbox's own user, nothing to gain back, under the seccomp filter.
    const inside = statusFields(result.stdout);
    expect(inside.Uid!.split(/\s+/)).toEqual(['65534', '65534', '65534', '65534']);
    for (const set of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) expect(inside[set]).toBe(ZERO_CAPS);
    expect(inside.NoNewPrivs).toBe('1');
    expect(inside.Seccomp).toBe('2');
    await engine.settle();
    expect(await settledLeftovers()).toEqual(NOTHING_LEFT);
  });
});

describe('without the launcher binary', () => {
  it('the backend says it cannot run and how to build it; a start fails with that', async () => {
    const config = sandboxConfigSchema.parse({});
    const runtimeDir = mkdtempSync(join(tmpdir(), 'warden-nolauncher-'));
    const missing = join(runtimeDir, 'build', 'warden-launch');
    const limits = resolveLimits(undefined, config.limits, config.maxLimits);
    const backend = createBwrapBackend({
      defaults: limits,
      uids: null,
      cgroups: null,
      runtimeDir,
      launcher: missing,
    });
    try {
      const probe = await backend.probe();
      expect(probe.available).toBe(false);
      expect(probe.detail).toContain(missing);
      expect(probe.detail).toContain('scripts/setup.sh');
      await expect(backend.start({ argv: ['/bin/true'] }, limits)).rejects.toThrow(
        /launcher .* is not built: run scripts\/setup\.sh/,
      );
    } finally {
      await backend.close?.();
      rmSync(runtimeDir, { recursive: true, force: true });
    }
  });
});
