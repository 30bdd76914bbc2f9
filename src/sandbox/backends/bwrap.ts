import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { forbiddenSyscalls, seccompKills } from '../audit.js';
import { createRunCgroup, removeOrphanCgroups, type CgroupSupport } from '../cgroups.js';
import { validateFiles } from '../files.js';
import { createHoldings, holdProcess, releaseAndRethrow } from '../holdings.js';
import { CGROUP_LIMITS, SUPERVISED_LIMITS } from '../limits.js';
import { sampleTree } from '../proc-sample.js';
import { buildSeccompFilter } from '../seccomp.js';
import { createSpawner, LAUNCHER, launcherMissing, type Slot } from '../spawner.js';
import { signalName, trialRun } from '../supervise.js';
import type { UidLeases } from '../uids.js';
import type {
  Backend,
  BackendProbe,
  DecodedExit,
  FaultHook,
  Limits,
  Sandbox,
  SandboxSpec,
} from '../types.js';

export const BWRAP = '/usr/bin/bwrap';
/** Inside the sandbox the program is this uid/gid; outside, a leased unprivileged host uid. */
const SANDBOX_ID = 65534;
const DEVICES = ['/dev/null', '/dev/zero', '/dev/full', '/dev/random', '/dev/urandom'];

function launcherArgs(keepFds: number, limits: Limits, cgroupProcs: string[], uid: number | null): string[] {
  const rlimits = [
    'core=0',
    `fsize=${limits.maxFileSizeBytes}`,
    // bwrap sets the sandbox up with the descriptors it is handed still open, and needs a few more.
    `nofile=${Math.max(limits.maxOpenFiles, keepFds + 16)}`,
  ];
  if (cgroupProcs.length === 0) {
    // Without cgroups these are the only process, CPU and memory bounds there are.
    const cpu = Math.ceil(limits.cpuTimeMs / 1000);
    rlimits.push(
      `nproc=${limits.maxProcesses}`,
      // SIGXCPU at the soft limit, SIGKILL at the hard one.
      `cpu=${cpu}:${cpu + 1}`,
      `data=${limits.memoryBytes}`,
    );
  }
  return [
    '--keep-fds',
    String(keepFds),
    ...rlimits.flatMap((r) => ['--rlimit', r]),
    ...cgroupProcs.flatMap((f) => ['--cgroup', f]),
    ...(uid === null ? [] : ['--uid', String(uid), '--gid', String(uid)]),
    '--',
  ];
}

export interface BwrapOptions {
  /** Limits of the probe's test run. */
  defaults: Limits;
  /** Set when Warden runs as root: sandboxes then run as leased host uids, under cgroups. */
  uids: UidLeases | null;
  cgroups: CgroupSupport | null;
  /** Why cgroups are not used (for warnings and `doctor`). */
  cgroupsUnavailable?: string;
  /** Private state: where the synthetic /etc given to sandboxes is staged. */
  runtimeDir: string;
  /** Tests only: fails a step of start-up on purpose. */
  fault?: FaultHook;
  /** Tests only: where the launcher is looked for (default LAUNCHER). */
  launcher?: string;
}

/**
 * The sandbox's /etc: just enough for runtimes (user names, dynamic-linker cache), nothing of the
 * host's own configuration or secrets. Staged once; each sandbox gets copies of the files written
 * into its own root (bwrap --file), so no mount inside names the staging place. The linker cache is
 * the host's own file bound read-only at its own path (copying it would count against a small
 * file-size limit of the run, which bwrap's writes are under).
 */
export function prepareEtc(runtimeDir: string): string[] {
  const etc = join(runtimeDir, 'etc');
  mkdirSync(etc, { recursive: true, mode: 0o755 });
  writeFileSync(
    join(etc, 'passwd'),
    `sandbox:x:${SANDBOX_ID}:${SANDBOX_ID}:sandbox:/tmp:/usr/sbin/nologin\n`,
  );
  writeFileSync(join(etc, 'group'), `sandbox:x:${SANDBOX_ID}:\n`);
  writeFileSync(join(etc, 'hosts'), '127.0.0.1 localhost\n');
  writeFileSync(join(etc, 'hostname'), 'warden\n');
  return ['passwd', 'group', 'hosts', 'hostname'].map((n) => join(etc, n));
}

/**
 * Host-wide /proc files that describe the host itself and that no runtime needs: its kernel command
 * line, disks and swap files (host paths), loaded modules, other users' key counts (host uids) and
 * boot id. Each is covered by an empty read-only file (~0.15 ms of start-up each, so the list stays
 * short). Kernel-wide facts that uname() gives anyway (/proc/version), or that only root can read
 * (timer_list, iomem addresses), stay; per-process files (/proc/self/…) describe the sandbox itself.
 */
export const MASKED_PROC = [
  'cmdline',
  'diskstats',
  'key-users',
  'modules',
  'partitions',
  'swaps',
  'sys/kernel/random/boot_id',
].filter((f) => existsSync(`/proc/${f}`));

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

/** Descriptors the launcher hands bwrap, after stdin/stdout/stderr and the payload (fd 3). */
interface FdLayout {
  seccomp: number;
  status: number;
  args: number;
  etc: { fd: number; dest: string }[];
  masks: { fd: number; dest: string }[];
  files: { fd: number; dest: string; mode: string }[];
  /** The highest descriptor bwrap reads; the launcher closes everything above it. */
  last: number;
}

function fdLayout(
  etcNames: string[],
  files: { path: string; executable: boolean }[],
  workdir: string,
): FdLayout {
  let next = 4;
  const seccomp = next++;
  const status = next++;
  const args = next++;
  const etc = etcNames.map((path) => ({ fd: next++, dest: posix.join('/etc', posix.basename(path)) }));
  const masks = MASKED_PROC.map((f) => ({ fd: next++, dest: `/proc/${f}` }));
  const userFiles = files.map((f) => ({
    fd: next++,
    dest: posix.join(workdir, f.path),
    mode: f.executable ? '0755' : '0644',
  }));
  return { seccomp, status, args, etc, masks, files: userFiles, last: next - 1 };
}

export function createBwrapBackend(options: BwrapOptions): Backend {
  const launcher = options.launcher ?? LAUNCHER;
  const etcFiles = prepareEtc(options.runtimeDir);
  const links = rootLinks();
  const fault: FaultHook = options.fault ?? (() => {});
  const warnings: string[] = [];
  if (!options.cgroups) {
    warnings.push(
      `no cgroups (${options.cgroupsUnavailable ?? 'unavailable'}): memory, process and CPU limits are per-process rlimits only`,
    );
  }
  if (!options.uids) warnings.push('Warden is not root: sandboxes run as its own uid (user namespace only)');
  if (options.uids) seccompKills.retain();
  const spawner = createSpawner(launcher);

  /**
   * bwrap's options. They travel on a descriptor (--args), not the command line: bwrap's init is
   * the sandbox's pid 1, and its /proc/1/cmdline must not show the host paths they contain.
   */
  function bwrapArgs(spec: SandboxSpec, limits: Limits, fds: FdLayout): string[] {
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
      '--dir',
      '/etc',
      ...fds.etc.flatMap((f) => ['--perms', '0644', '--file', String(f.fd), f.dest]),
      ...(existsSync('/etc/ld.so.cache') ? ['--ro-bind', '/etc/ld.so.cache', '/etc/ld.so.cache'] : []),
      '--proc',
      '/proc',
      ...fds.masks.flatMap((m) => ['--perms', '0444', '--ro-bind-data', String(m.fd), m.dest]),
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
    for (const bind of spec.binds ?? []) args.push('--ro-bind', bind.source, bind.dest);
    // The caller's size-capped output dir, read by the caller after the run (jobs' /out).
    if (spec.outputDir) args.push('--bind', spec.outputDir, '/out');
    const parents = new Set(fds.files.map((f) => posix.dirname(f.dest)).filter((d) => d !== workdir));
    for (const dir of [...parents].sort()) args.push('--dir', dir);
    for (const f of fds.files) args.push('--perms', f.mode, '--file', String(f.fd), f.dest);
    args.push('--remount-ro', '/', '--chdir', workdir, '--clearenv');
    const env = { PATH: '/usr/bin:/bin', HOME: '/tmp', LANG: 'C.UTF-8', TMPDIR: '/tmp', ...spec.env };
    for (const [k, v] of Object.entries(env)) args.push('--setenv', k, v);
    args.push('--seccomp', String(fds.seccomp), '--json-status-fd', String(fds.status));
    return args;
  }

  async function start(spec: SandboxSpec, limits: Limits): Promise<Sandbox> {
    if (!existsSync(launcher)) throw new Error(launcherMissing(launcher));
    const files = validateFiles(spec.files ?? []);
    const fds = fdLayout(etcFiles, files, spec.workdir ?? '/box');
    const id = `${process.pid}-${randomBytes(6).toString('hex')}`;
    const held = createHoldings();
    try {
      const uids = options.uids;
      const uid = uids ? held.take(uids.acquire(), (u) => uids.release(u)) : null;
      // Attributing seccomp kills to the uid takes a round trip to the audit reader: it overlaps the
      // cgroup's set-up, and the sandbox is spawned only once it is done.
      const watching = uid === null ? Promise.resolve() : seccompKills.watch(uid);
      watching.catch(() => {});
      if (uid !== null) {
        held.take(uid, async (u) => {
          await watching.catch(() => {});
          seccompKills.unwatch(u);
        });
      }
      fault('uid');
      // The run's host uid owns its output dir (made by the caller, not yet reachable by any job).
      if (spec.outputDir && uid !== null) chownSync(spec.outputDir, uid, uid);
      for (const bind of spec.binds ?? []) if (uid !== null) chownSync(bind.source, uid, uid);
      const cgroup = options.cgroups
        ? held.take(createRunCgroup(options.cgroups, id), (c) => c.destroy())
        : null;
      cgroup?.create();
      fault('cgroup');
      cgroup?.setLimits(limits);
      await watching;

      const slots: Slot[] = Array.from({ length: fds.last + 1 }, () => ({ kind: 'stream' }));
      // In a private namespace (loopback), internet sockets reach only its own loopback.
      const network = (spec.network?.enabled || spec.network?.loopback) ?? false;
      slots[fds.seccomp] = { kind: 'data', data: seccompFilter(network) };
      slots[fds.status] = { kind: 'status' };
      const args = bwrapArgs(spec, limits, fds).map((a) => `${a}\0`);
      slots[fds.args] = { kind: 'data', data: Buffer.from(args.join('')) };
      fds.etc.forEach((f, i) => (slots[f.fd] = { kind: 'file', path: etcFiles[i]! }));
      for (const m of fds.masks) slots[m.fd] = { kind: 'null' };
      files.forEach((f, i) => (slots[fds.files[i]!.fd] = { kind: 'data', data: f.content }));
      const child = await spawner.spawn(slots, [
        ...launcherArgs(fds.last, limits, cgroup?.procsFiles ?? [], uid),
        BWRAP,
        '--args',
        String(fds.args),
        '--',
        ...spec.argv,
      ]);
      const exited = holdProcess(held, child);
      fault('spawned');

      // Without cgroups, usage is sampled from /proc at each poll of the supervisor.
      let sampledPeak = 0;
      const sampled = () => {
        const sample = child.pid ? sampleTree(child.pid) : { cpuMs: 0, rssBytes: 0 };
        sampledPeak = Math.max(sampledPeak, sample.rssBytes);
        return sample;
      };

      return {
        backend: 'bwrap',
        isolation: 'namespaces',
        warnings: spec.network?.enabled
          ? [
              ...warnings,
              "network enabled: the run shared the host's network namespace, loopback services included",
            ]
          : warnings,
        child,
        exited,
        setLimits(runLimits) {
          cgroup?.setLimits(runLimits);
        },
        cpuMs: () => (cgroup ? cgroup.cpuMs() : sampled().cpuMs),
        peakMemoryBytes: () => cgroup?.peakMemoryBytes() ?? sampledPeak,
        oomKilled: () => cgroup?.oomKilled() ?? false,
        // die-with-parent takes the sandbox's pid namespace down with bwrap.
        killTree: () => child.kill('SIGKILL'),
        decodeExit(code, signal): DecodedExit {
          if (child.lost) return { kind: 'setup_failed', error: child.lost };
          if (!child.started) {
            return { kind: 'setup_failed', error: `sandbox did not start (bwrap exit ${code ?? signal})` };
          }
          if (signal) return { kind: 'exited', exitCode: null, signal };
          // bwrap reports a child killed by signal N as exit status 128 + N.
          if (code !== null && code > 128 && code < 128 + 65) {
            return { kind: 'exited', exitCode: null, signal: signalName(code - 128) };
          }
          return { kind: 'exited', exitCode: code, signal: null };
        },
        violations: (decoded) => forbiddenSyscalls(uid, decoded),
        release: () => held.release(),
      };
    } catch (err) {
      return releaseAndRethrow(held, err);
    }
  }

  return {
    name: 'bwrap',
    isolation: 'namespaces',
    adjustableLimits: options.cgroups ? [...SUPERVISED_LIMITS, ...CGROUP_LIMITS] : SUPERVISED_LIMITS,
    start,
    async probe(): Promise<BackendProbe> {
      const childKills = (await seccompKills.available())
        ? []
        : [
            `a forbidden system call by a forked child is not detected (${seccompKills.problem ?? 'no audit records'}); the first process's is`,
          ];
      const base = {
        backend: 'bwrap' as const,
        isolation: 'namespaces' as const,
        warnings: [...warnings, ...childKills],
      };
      if (!existsSync(BWRAP)) return { ...base, available: false, detail: 'bubblewrap is not installed' };
      if (!existsSync(launcher)) return { ...base, available: false, detail: launcherMissing(launcher) };
      const version = spawnSync(BWRAP, ['--version'], { encoding: 'utf8' }).stdout.trim();
      const trial = await trialRun(start, options.defaults);
      if (!trial.ok) return { ...base, available: false, detail: `${version}: ${trial.detail}` };
      return { ...base, available: true, detail: `${version}; cold start + /bin/true ${trial.ms} ms` };
    },
    async close() {
      await spawner.close();
      if (options.uids) await seccompKills.release();
    },
    async cleanupOrphans() {
      const removed = options.cgroups ? await removeOrphanCgroups(options.cgroups) : [];
      // One entry per lease, so the monitor counts each leftover.
      const reclaimed = options.uids?.reclaimStale() ?? [];
      return [...removed, ...reclaimed.map((uid) => `stale uid lease ${uid}`)];
    },
  };
}
