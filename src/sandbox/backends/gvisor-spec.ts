/**
 * The OCI bundle of a gVisor sandbox: a read-only root staged once per host (mount points, the
 * merged-/usr links and the same synthetic /etc as bwrap's), and a config.json per sandbox with the
 * same view, environment, limits and system-call policy as the bwrap backend gives a run.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { join, posix } from 'node:path';
import { ENOSYS_SYSCALLS } from '../seccomp.js';
import type { Limits, SandboxSpec } from '../types.js';
import { prepareEtc } from './bwrap.js';
import { dockerSeccompProfile } from './docker-seccomp.js';

/** The program's uid and gid inside gVisor's kernel; no host process ever has them for the run. */
export const SANDBOX_ID = 65534;
/** Where the run's fd-3 pipe (a host FIFO) and its given files appear inside. */
export const PAYLOAD_PATH = '/run/payload';
export const FILES_PATH = '/run/files';
/** Written by the wrapper on stderr once fd 3 is open: the sandbox is up, its runtime starts. */
export const READY_BYTE = 0x06;
const LD_CACHE = '/etc/ld.so.cache';

/**
 * The sandbox's first process: takes its tag off stdin (the first line, read byte by byte: nothing
 * past it), opens the payload FIFO as fd 3 (gVisor's runsc has no way to hand a host descriptor to
 * the container), copies the run's files into the working dir when there are any, reports
 * readiness, then runs the runtime with the rest of stdin as its own. When the program ends, its
 * status follows its output on stdout and stderr, tagged (see trailer.ts): the run ends there,
 * while runsc tears the sandbox down — its kernel ends every process left once this shell exits.
 */
function wrapper(withFiles: boolean): string {
  return [
    'exec 5<&0 </dev/null',
    'read -r tag <&5 || exit 125',
    `exec 3<${PAYLOAD_PATH} || exit 125`,
    ...(withFiles ? [`cp -R ${FILES_PATH}/. . || exit 125`] : []),
    `printf '\\${READY_BYTE.toString(8).padStart(3, '0')}' >&2`,
    // The shell's own messages (a job killed by a signal) go nowhere; the program's stderr is fd 6.
    'exec 6>&2 2>/dev/null',
    '"$@" 0<&5 5<&- 2>&6 6>&-',
    's=$?',
    'printf \'%s %s\\n\' "$tag" "$s"',
    'printf \'%s %s\\n\' "$tag" "$s" >&6',
  ].join('\n');
}

/**
 * The shared read-only root: empty mount points, /bin → usr/bin style links as on the host, and
 * /etc with the bwrap backend's synthetic files plus the host's linker cache. Named by its content
 * and made under a temporary name then renamed, so Warden processes sharing the host (and sandboxes
 * still running on an older one) never see a root half made or changed under them.
 */
export function stageRootfs(runtimeDir: string): string {
  const base = join(runtimeDir, 'gvisor');
  const links: [string, string | undefined][] = [];
  for (const dir of ['bin', 'sbin', 'lib', 'lib64', 'lib32', 'libx32']) {
    if (!existsSync(`/${dir}`)) continue;
    try {
      links.push([dir, readlinkSync(`/${dir}`)]);
    } catch {
      links.push([dir, undefined]); // a real directory: bound read-only per sandbox
    }
  }
  const etc = [...prepareEtc(runtimeDir), ...(existsSync(LD_CACHE) ? [LD_CACHE] : [])];
  const hash = createHash('sha256').update(JSON.stringify(links));
  for (const file of etc) hash.update(file).update(readFileSync(file));
  const root = join(base, `rootfs-${hash.digest('hex').slice(0, 16)}`);
  if (existsSync(root)) return root;
  const staging = join(base, `.rootfs-${process.pid}-${randomBytes(4).toString('hex')}`);
  for (const dir of ['usr', 'etc', 'tmp', 'box', 'proc', 'dev', 'run', 'out'])
    mkdirSync(join(staging, dir), { recursive: true, mode: 0o755 });
  for (const [dir, target] of links) {
    if (target) symlinkSync(target, join(staging, dir));
    else mkdirSync(join(staging, dir));
  }
  for (const file of etc) copyFileSync(file, join(staging, 'etc', posix.basename(file)));
  try {
    renameSync(staging, root);
  } catch {
    rmSync(staging, { recursive: true, force: true }); // another process made the same root first
  }
  return root;
}

/**
 * The bwrap filter's policy (through the Docker profile generated from it) as gVisor's OCI seccomp
 * takes it. gVisor 2022 knows SCMP_ACT_KILL only as "kill the thread", so a forbidden call traps
 * instead: SIGSYS ends the whole process, as the kill does under bwrap. Its errno actions always
 * return EPERM (per-rule errno is ignored), so the ENOSYS rules are left out: gVisor answers clone3
 * with ENOSYS itself, which glibc needs to fall back to clone (EPERM would fail every new thread),
 * and its io_uring is its own, inside the sandbox kernel, with no network beyond its loopback.
 */
export function gvisorSeccompProfile(allowNetwork: boolean): unknown {
  const profile = dockerSeccompProfile(allowNetwork);
  const enosys = new Set(ENOSYS_SYSCALLS);
  return {
    ...profile,
    syscalls: profile.syscalls
      .filter((rule) => !rule.names.every((n) => enosys.has(n)))
      .map((rule) => (rule.action === 'SCMP_ACT_KILL_PROCESS' ? { ...rule, action: 'SCMP_ACT_TRAP' } : rule)),
  };
}

type Rlimit = { type: string; hard: number; soft: number };

function rlimits(limits: Limits): Rlimit[] {
  const both = (type: string, value: number): Rlimit => ({ type, hard: value, soft: value });
  return [
    both('RLIMIT_CORE', 0),
    both('RLIMIT_FSIZE', limits.maxFileSizeBytes),
    both('RLIMIT_NOFILE', limits.maxOpenFiles),
    // gVisor counts the run's processes and threads itself (per uid, in its kernel): the process
    // limit holds there (plus the wrapper shell), while the host cgroup also holds gVisor's threads.
    both('RLIMIT_NPROC', limits.maxProcesses + 1),
  ];
}

const tmpfs = (destination: string, bytes: number, mode = '1777') => ({
  destination,
  type: 'tmpfs',
  source: 'tmpfs',
  options: ['nosuid', 'nodev', `size=${bytes}`, `mode=${mode}`],
});
const roBind = (source: string, destination: string) => ({
  destination,
  type: 'bind',
  source,
  options: ['rbind', 'ro', 'nosuid', 'nodev'],
});

export interface BundlePaths {
  rootfs: string;
  payload: string;
  /** Host dir with the run's files (bound read-only, copied into the working dir by the wrapper). */
  files?: string;
}

/** config.json for one sandbox (bigints: exact 64-bit seccomp operands). */
export function ociConfig(spec: SandboxSpec, limits: Limits, paths: BundlePaths): string {
  const workdir = spec.workdir ?? '/box';
  const env = { PATH: '/usr/bin:/bin', HOME: '/tmp', LANG: 'C.UTF-8', TMPDIR: '/tmp', ...spec.env };
  const internet = (spec.network?.enabled || spec.network?.loopback) ?? false;
  const config = {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: SANDBOX_ID, gid: SANDBOX_ID },
      args: ['/bin/sh', '-c', wrapper(paths.files !== undefined), 'warden', ...spec.argv],
      env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
      cwd: workdir,
      capabilities: { bounding: [], effective: [], inheritable: [], permitted: [], ambient: [] },
      rlimits: rlimits(limits),
      noNewPrivileges: true,
    },
    root: { path: paths.rootfs, readonly: true },
    hostname: 'warden',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'mode=755'] },
      tmpfs('/dev/shm', limits.diskBytes),
      roBind('/usr', '/usr'),
      // Host-local tools and credentials often live in /usr/local; runtimes come from /usr.
      tmpfs('/usr/local', 4096, '755'),
      tmpfs('/tmp', limits.diskBytes),
      tmpfs(workdir, limits.diskBytes),
      roBind(paths.payload, PAYLOAD_PATH),
      ...(paths.files ? [roBind(paths.files, FILES_PATH)] : []),
      ...(spec.readOnlyPaths ?? []).map((p) => roBind(p, p)),
      ...(spec.binds ?? []).map((b) => roBind(b.source, b.dest)),
      ...(spec.outputDir
        ? [
            {
              destination: '/out',
              type: 'bind',
              source: spec.outputDir,
              options: ['rbind', 'rw', 'nosuid', 'nodev'],
            },
          ]
        : []),
    ],
    linux: {
      namespaces: ['pid', 'network', 'ipc', 'uts', 'mount'].map((type) => ({ type })),
      seccomp: gvisorSeccompProfile(internet),
    },
  };
  const json = JSON.stringify(config, (_key, value: unknown) =>
    typeof value === 'bigint' ? `@@${value}@@` : value,
  );
  return json.replace(/"@@(\d+)@@"/g, '$1');
}
