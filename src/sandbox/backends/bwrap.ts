import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import type { Writable } from 'node:stream';
import { createRunCgroup, removeOrphanCgroups, type CgroupSupport } from '../cgroups.js';
import { buildSeccompFilter } from '../seccomp.js';
import { signalName, superviseRun, type DecodedExit, type Supervised } from '../supervise.js';
import { readSeccompKill } from '../audit.js';
import type { UidLeases } from '../uids.js';
import type { Backend, BackendProbe, Limits, SandboxSpec, StartedSandbox } from '../types.js';
import { validateFiles } from '../files.js';
import { sampleTree } from '../proc-sample.js';

export const BWRAP = '/usr/bin/bwrap';
/** Inside the sandbox the program is this uid/gid; outside, a leased unprivileged host uid. */
const SANDBOX_ID = 65534;
const DEVICES = ['/dev/null', '/dev/zero', '/dev/full', '/dev/random', '/dev/urandom'];

/**
 * The launcher, run by bash as the service's user: it closes every descriptor past the ones bwrap
 * reads (the service may have inherited some without close-on-exec), sets the rlimits, joins the
 * run's cgroups while still root, and only then execs setpriv to become an unprivileged host user
 * for good, so everything the run starts is inside the cgroups from its first instruction.
 * Arguments: the cgroup.procs files, `--`, the command. Values are numbers only.
 */
function launcher(keepFds: number, limits: Limits, withCgroups: boolean): string {
  const ulimits = [
    'ulimit -c 0',
    `ulimit -f ${Math.ceil(limits.maxFileSizeBytes / 1024)}`,
    `ulimit -n ${limits.maxOpenFiles}`,
  ];
  if (!withCgroups) {
    // Without cgroups these are the only process, CPU and memory bounds there are.
    const cpu = Math.ceil(limits.cpuTimeMs / 1000);
    ulimits.push(
      `ulimit -u ${limits.maxProcesses}`,
      // Soft first: the soft limit may never exceed the hard one. SIGXCPU at soft, SIGKILL at hard.
      `ulimit -S -t ${cpu}`,
      `ulimit -H -t ${cpu + 1}`,
      `ulimit -d ${Math.ceil(limits.memoryBytes / 1024)}`,
    );
  }
  return [
    `for f in /proc/$$/fd/*; do n=\${f##*/}; if [ "$n" -gt ${keepFds} ]; then eval "exec $n>&-"; fi; done`,
    `${ulimits.join(' && ')} || exit 125`,
    'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift',
    'exec "$@"',
  ].join('\n');
}

export interface BwrapOptions {
  /** Limits a spec's partial limits are completed from (already clamped by the engine). */
  defaults: Limits;
  /** Set when Warden runs as root: sandboxes then run as leased host uids, under cgroups. */
  uids: UidLeases | null;
  cgroups: CgroupSupport | null;
  /** Why cgroups are not used (for warnings and `doctor`). */
  cgroupsUnavailable?: string;
  /** Private state: the synthetic /etc given to sandboxes. */
  runtimeDir: string;
}

/**
 * The sandbox's /etc: just enough for runtimes (user names, dynamic-linker cache), nothing of the
 * host's own configuration or secrets.
 */
function prepareEtc(runtimeDir: string): string {
  const etc = join(runtimeDir, 'etc');
  mkdirSync(etc, { recursive: true, mode: 0o755 });
  writeFileSync(
    join(etc, 'passwd'),
    `sandbox:x:${SANDBOX_ID}:${SANDBOX_ID}:sandbox:/tmp:/usr/sbin/nologin\n`,
  );
  writeFileSync(join(etc, 'group'), `sandbox:x:${SANDBOX_ID}:\n`);
  writeFileSync(join(etc, 'hosts'), '127.0.0.1 localhost\n');
  writeFileSync(join(etc, 'hostname'), 'warden\n');
  if (existsSync('/etc/ld.so.cache')) copyFileSync('/etc/ld.so.cache', join(etc, 'ld.so.cache'));
  return etc;
}

/** Merged-/usr hosts have /bin, /lib… as links into /usr; others get them bound read-only. */
function rootLinks(): string[] {
  const args: string[] = [];
  for (const dir of ['bin', 'sbin', 'lib', 'lib64', 'lib32', 'libx32']) {
    const path = `/${dir}`;
    if (!existsSync(path)) continue;
    const target = spawnSync('readlink', [path], { encoding: 'utf8' }).stdout.trim();
    if (target) args.push('--symlink', target, path);
    else args.push('--ro-bind', path, path);
  }
  return args;
}

const filters = new Map<boolean, Buffer>();
function seccompFilter(allowNetwork: boolean): Buffer {
  let filter = filters.get(allowNetwork);
  if (!filter) filters.set(allowNetwork, (filter = buildSeccompFilter({ allowNetwork })));
  return filter;
}

export function createBwrapBackend(options: BwrapOptions): Backend {
  const etcDir = prepareEtc(options.runtimeDir);
  const links = rootLinks();
  const warnings: string[] = [];
  if (!options.cgroups) {
    warnings.push(
      `no cgroups (${options.cgroupsUnavailable ?? 'unavailable'}): memory, process and CPU limits are per-process rlimits only`,
    );
  }
  if (!options.uids) warnings.push('Warden is not root: sandboxes run as its own uid (user namespace only)');

  function bwrapArgs(
    spec: SandboxSpec,
    limits: Limits,
    fileFds: { fd: number; dest: string; mode: string }[],
  ) {
    const workdir = spec.workdir ?? '/box';
    const args = [
      // No --disable-userns: the seccomp filter already kills every way to a new namespace (unshare,
      // setns, clone with CLONE_NEW*; clone3 is ENOSYS), and the extra nested namespace costs ~2 ms.
      '--unshare-user',
      '--uid',
      String(SANDBOX_ID),
      '--gid',
      String(SANDBOX_ID),
      '--unshare-pid',
      '--unshare-ipc',
      '--unshare-uts',
      '--unshare-cgroup-try',
      '--hostname',
      'warden',
      '--die-with-parent',
      '--new-session',
      '--cap-drop',
      'ALL',
      '--ro-bind',
      '/usr',
      '/usr',
      // Host-local tools and credentials often live in /usr/local; runtimes come from /usr.
      '--tmpfs',
      '/usr/local',
      ...links,
      '--ro-bind',
      etcDir,
      '/etc',
      '--proc',
      '/proc',
      // A hand-made /dev: the devices programs need and nothing else. No devpts (no terminals to open),
      // and ~1 ms cheaper than bwrap's --dev.
      '--tmpfs',
      '/dev',
      ...DEVICES.flatMap((d) => ['--dev-bind', d, d]),
      ...['stdin', 'stdout', 'stderr'].flatMap((n, fd) => ['--symlink', `/proc/self/fd/${fd}`, `/dev/${n}`]),
      '--symlink',
      '/proc/self/fd',
      '/dev/fd',
      '--size',
      String(limits.diskBytes),
      '--tmpfs',
      '/dev/shm',
      '--size',
      String(limits.diskBytes),
      '--tmpfs',
      '/tmp',
      '--size',
      String(limits.diskBytes),
      '--tmpfs',
      workdir,
    ];
    if (!spec.network?.enabled) args.push('--unshare-net');
    for (const path of spec.readOnlyPaths ?? []) args.push('--ro-bind', path, path);
    const parents = new Set(fileFds.map((f) => posix.dirname(f.dest)).filter((d) => d !== workdir));
    for (const dir of [...parents].sort()) args.push('--dir', dir);
    for (const f of fileFds) {
      args.push('--perms', f.mode, '--file', String(f.fd), f.dest);
    }
    args.push('--remount-ro', '/', '--chdir', workdir, '--clearenv');
    const env = { PATH: '/usr/bin:/bin', HOME: '/tmp', LANG: 'C.UTF-8', TMPDIR: '/tmp', ...spec.env };
    for (const [k, v] of Object.entries(env)) args.push('--setenv', k, v);
    args.push('--seccomp', '4', '--json-status-fd', '5', '--', ...spec.argv);
    return args;
  }

  async function start(spec: SandboxSpec): Promise<StartedSandbox> {
    const limits: Limits = { ...options.defaults, ...spec.limits };
    const files = validateFiles(spec.files ?? []);
    const workdir = spec.workdir ?? '/box';
    const id = `${process.pid}-${randomBytes(6).toString('hex')}`;
    const startedUs = process.hrtime.bigint() / 1000n;
    const uid = options.uids?.acquire() ?? null;
    let cgroup: ReturnType<typeof createRunCgroup> | null = null;
    try {
      if (options.cgroups) {
        cgroup = createRunCgroup(options.cgroups, id);
        cgroup.setLimits(limits);
      }
    } catch (err) {
      if (uid !== null) options.uids?.release(uid);
      await cgroup?.destroy().catch(() => {});
      throw err;
    }
    const fileFds = files.map((f, i) => ({
      fd: 6 + i,
      dest: posix.join(workdir, f.path),
      mode: f.executable ? '0755' : '0644',
    }));
    const inner = [BWRAP, ...bwrapArgs(spec, limits, fileFds)];
    const drop =
      uid === null
        ? []
        : [
            '/usr/bin/setpriv',
            `--reuid=${uid}`,
            `--regid=${uid}`,
            '--clear-groups',
            '--inh-caps=-all',
            '--bounding-set=-all',
            '--',
          ];
    const command = [
      // --norc: bash reads ~/.bashrc when its stdin is a socket, as node's stdio pipes are.
      '/bin/bash',
      '--norc',
      '--noprofile',
      '-c',
      launcher(5 + files.length, limits, cgroup !== null),
      'warden-sandbox',
      ...(cgroup?.procsFiles ?? []),
      '--',
      ...drop,
      ...inner,
    ];
    const child = spawn(command[0]!, command.slice(1), {
      stdio: ['pipe', 'pipe', 'pipe', 'pipe', 'pipe', 'pipe', ...files.map(() => 'pipe' as const)],
      env: { PATH: '/usr/bin:/bin' },
      cwd: '/',
    });
    const stdio = child.stdio as unknown as (Writable | NodeJS.ReadableStream | null)[];
    const seccompPipe = stdio[4] as Writable;
    seccompPipe.on('error', () => {});
    seccompPipe.end(seccompFilter(spec.network?.enabled ?? false));
    files.forEach((f, i) => {
      const pipe = stdio[6 + i] as Writable;
      pipe.on('error', () => {});
      pipe.end(f.content);
    });
    let status = '';
    const statusStream = stdio[5] as NodeJS.ReadableStream;
    statusStream.setEncoding('utf8');
    statusStream.on('data', (d: string) => (status += d));
    const statusDone = new Promise<void>((r) => statusStream.once('close', () => r()));
    child.on('error', () => {});

    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    let torn = false;
    const teardown = async () => {
      if (torn) return;
      torn = true;
      try {
        child.kill('SIGKILL');
      } catch {
        /* gone */
      }
      await cgroup?.destroy();
      if (uid !== null) options.uids?.release(uid);
    };

    const decodeExit = (code: number | null, signal: NodeJS.Signals | null): DecodedExit => {
      if (!status.includes('"child-pid"')) {
        return { kind: 'setup_failed', error: `sandbox did not start (bwrap exit ${code ?? signal})` };
      }
      if (signal) return { kind: 'exited', exitCode: null, signal };
      // bwrap reports a child killed by signal N as exit status 128 + N.
      if (code !== null && code > 128 && code < 128 + 65) {
        return { kind: 'exited', exitCode: null, signal: signalName(code - 128) };
      }
      return { kind: 'exited', exitCode: code, signal: null };
    };

    // Without cgroups, usage is sampled from /proc at each poll of the supervisor.
    let sampledPeak = 0;
    const sampled = () => {
      const s = child.pid ? sampleTree(child.pid) : { cpuMs: 0, rssBytes: 0 };
      sampledPeak = Math.max(sampledPeak, s.rssBytes);
      return s;
    };

    const supervised: Supervised = {
      child,
      backend: 'bwrap',
      isolation: 'namespaces',
      pooled: false,
      warnings: spec.network?.enabled
        ? [
            ...warnings,
            "network enabled: the run shared the host's network namespace, loopback services included",
          ]
        : warnings,
      cpuMs: () => (cgroup ? cgroup.cpuMs() : sampled().cpuMs),
      peakMemoryBytes: () => cgroup?.peakMemoryBytes() ?? sampledPeak,
      oomKilled: () => cgroup?.oomKilled() ?? false,
      killTree: () => {
        // die-with-parent takes the sandbox's pid namespace down with bwrap.
        child.kill('SIGKILL');
      },
      decodeExit,
      teardown,
      async violations(decoded) {
        await statusDone;
        if (decoded.kind !== 'exited' || decoded.signal !== 'SIGSYS') return [];
        const syscall = uid !== null ? await readSeccompKill(uid, startedUs) : undefined;
        return [
          {
            rule: 'forbidden_syscall',
            message: syscall
              ? `the program was stopped for calling a forbidden system call: ${syscall}`
              : 'the program was stopped for calling a forbidden system call',
            ...(syscall ? { syscall } : {}),
          },
        ];
      },
    };
    let used = false;
    return {
      backend: 'bwrap',
      exited,
      async execute(input) {
        if (used) throw new Error('a sandbox runs once');
        used = true;
        const runLimits: Limits = { ...limits, ...input.limits };
        if (cgroup && input.limits) cgroup.setLimits(runLimits);
        return superviseRun(supervised, input, runLimits);
      },
      async destroy() {
        used = true;
        await teardown();
      },
    };
  }

  return {
    name: 'bwrap',
    isolation: 'namespaces',
    start,
    async probe(): Promise<BackendProbe> {
      const base = { backend: 'bwrap' as const, isolation: 'namespaces' as const, warnings };
      if (!existsSync(BWRAP)) return { ...base, available: false, detail: 'bubblewrap is not installed' };
      const version = spawnSync(BWRAP, ['--version'], { encoding: 'utf8' }).stdout.trim();
      try {
        const sandbox = await start({ argv: ['/bin/true'] });
        const result = await sandbox.execute({});
        if (result.status !== 'success') {
          return {
            ...base,
            available: false,
            detail: `${version}: test run ${result.status} ${result.error ?? result.stderr}`,
          };
        }
      } catch (err) {
        return { ...base, available: false, detail: `${version}: ${(err as Error).message}` };
      }
      return { ...base, available: true, detail: version };
    },
    async cleanupOrphans() {
      const removed = options.cgroups ? await removeOrphanCgroups(options.cgroups) : [];
      const reclaimed = options.uids?.reclaimStale() ?? 0;
      return reclaimed > 0 ? [...removed, `${reclaimed} stale uid lease(s)`] : removed;
    },
  };
}
