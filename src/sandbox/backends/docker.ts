import { randomBytes } from 'node:crypto';
import { chownSync, existsSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import type Docker from 'dockerode';
import { forbiddenSyscalls, seccompKills } from '../audit.js';
import type { CgroupSupport } from '../cgroups.js';
import { validateFiles } from '../files.js';
import { createHoldings, releaseAndRethrow } from '../holdings.js';
import { SUPERVISED_LIMITS } from '../limits.js';
import { signalName, trialRun } from '../supervise.js';
import { tarArchive } from '../tar.js';
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
import { MASKED_PROC } from './bwrap.js';
import { containerUsage, type ContainerUsage } from './docker-cgroup.js';
import {
  BUILD_IMAGE_COMMAND,
  ensureImage,
  imageArchive,
  imageExists,
  rootLayout,
  WRAPPER,
} from './docker-image.js';
import { OWNER, ownerAlive } from './docker-owner.js';
import { dockerSeccompOption } from './docker-seccomp.js';
import { ContainerStdio } from './docker-stream.js';

/** Without a leased host uid (Warden not root), containers run as nobody. */
const NOBODY = 65534;
/** Docker's init and the wrapper shell live beside the program for the whole run. */
const OWN_PROCESSES = 2;
/**
 * Under the runsc runtime the container's pids cgroup also holds gVisor's own sentry and gofer
 * threads (≈ 45 idle here), so the limit needs this much room on top to let the program start.
 */
const RUNSC_PIDS = 64;
const LABEL = { owner: 'warden.owner', sandbox: 'warden.sandbox', backend: 'warden.backend' } as const;
/** Docker's own masked /proc and /sys paths (replaced, not extended, when a list is given). */
const DOCKER_MASKED = [
  '/proc/asound',
  '/proc/acpi',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
];
const DOCKER_READONLY = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

export interface DockerOptions {
  /** Limits of the probe's test run. */
  defaults: Limits;
  /** Set when Warden runs as root: containers run as leased host uids (shared with bwrap). */
  uids: UidLeases | null;
  /** Where the containers' usage is read (the daemon makes their cgroups). */
  cgroups: CgroupSupport | null;
  socketPath: string;
  /** Image name; the tag is a hash of its content. */
  image: string;
  runtime: 'runc' | 'runsc';
  fault?: FaultHook;
}

const statusOf = (err: unknown) => (err as { statusCode?: number } | null)?.statusCode;

/** Docker answers 404 for a container already gone and 409 for one being removed: both are done. */
async function ignoreGone(work: Promise<unknown>): Promise<void> {
  try {
    await work;
  } catch (err) {
    if (statusOf(err) !== 404 && statusOf(err) !== 409) throw err;
  }
}

function withTimeout<T>(work: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)));
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

/**
 * Sandbox ids of this process's containers not yet released, whichever engine started them: any
 * other container labelled with this process as owner belongs to a run that is over.
 */
const live = new Set<string>();

let dockerode: Promise<{ default: typeof Docker }> | undefined;
/**
 * A client of the daemon at `socketPath`. dockerode (and its ssh2 dependency's native parts) load on
 * the first use of the docker backend, never by a process that only runs other backends.
 */
async function connect(socketPath: string): Promise<Docker> {
  const { default: Dockerode } = await (dockerode ??= import('dockerode'));
  return new Dockerode({ socketPath });
}

export function createDockerBackend(options: DockerOptions): Backend {
  let client: Promise<Docker> | undefined;
  const daemon = () => (client ??= connect(options.socketPath));
  const fault: FaultHook = options.fault ?? (() => {});
  const layout = rootLayout();
  let image: Promise<string> | undefined;
  const imageTag = () => {
    image ??= daemon()
      .then((docker) => ensureImage(docker, options.image))
      .catch((err: unknown) => {
        image = undefined;
        throw err;
      });
    return image;
  };
  const warnings: string[] = [];
  if (!options.uids) warnings.push('Warden is not root: containers run as nobody, not a uid of their own');
  if (!options.cgroups) warnings.push('no cgroups readable here: CPU time and memory use are not measured');
  if (options.uids) seccompKills.retain();

  function hostConfig(spec: SandboxSpec, limits: Limits, uid: number, noexec: boolean): Docker.HostConfig {
    const workdir = spec.workdir ?? '/box';
    const exec = noexec ? 'noexec' : 'exec';
    const binds = [
      '/usr:/usr:ro',
      ...layout.binds.map((p) => `${p}:${p}:ro`),
      ...(existsSync('/etc/ld.so.cache') ? ['/etc/ld.so.cache:/etc/ld.so.cache:ro'] : []),
      ...(spec.readOnlyPaths ?? []).map((p) => `${p}:${p}:ro`),
      ...(spec.binds ?? []).map((b) => `${b.source}:${b.dest}:ro`),
      ...(spec.outputDir ? [`${spec.outputDir}:/out:rw`] : []),
    ];
    return {
      NetworkMode: spec.network?.enabled ? 'host' : 'none',
      Binds: binds,
      Tmpfs: {
        '/tmp': `rw,nosuid,nodev,${exec},size=${limits.diskBytes},mode=1777`,
        [workdir]: `rw,nosuid,nodev,${exec},size=${limits.diskBytes},uid=${uid},gid=${uid},mode=0700`,
        // Host-local tools and credentials often live in /usr/local; runtimes come from /usr.
        '/usr/local': 'ro,nosuid,nodev,noexec,size=4k',
      },
      ShmSize: limits.diskBytes,
      ReadonlyRootfs: true,
      CapDrop: ['ALL'],
      SecurityOpt: [
        'no-new-privileges',
        dockerSeccompOption((spec.network?.enabled || spec.network?.loopback) ?? false, options.runtime),
      ],
      Memory: limits.memoryBytes,
      MemorySwap: limits.memoryBytes,
      CpuPeriod: 100_000,
      CpuQuota: Math.max(1000, Math.round(limits.cpus * 100_000)),
      PidsLimit: limits.maxProcesses + OWN_PROCESSES + (options.runtime === 'runsc' ? RUNSC_PIDS : 0),
      Ulimits: [
        { Name: 'nofile', Soft: limits.maxOpenFiles, Hard: limits.maxOpenFiles },
        { Name: 'fsize', Soft: limits.maxFileSizeBytes, Hard: limits.maxFileSizeBytes },
        { Name: 'core', Soft: 0, Hard: 0 },
      ],
      Init: true,
      IpcMode: 'private',
      Runtime: options.runtime,
      // No /sys at all, as with bwrap (Docker would show the container's cgroup files there).
      MaskedPaths: [...DOCKER_MASKED, '/sys', ...MASKED_PROC.map((f) => `/proc/${f}`)],
      ReadonlyPaths: DOCKER_READONLY,
      // Output goes to the attached run only: nothing is kept by the daemon.
      LogConfig: { Type: 'none', Config: {} },
    };
  }

  async function start(spec: SandboxSpec, limits: Limits): Promise<Sandbox> {
    const files = validateFiles(spec.files ?? []);
    const workdir = spec.workdir ?? '/box';
    const id = `${process.pid}-${randomBytes(6).toString('hex')}`;
    const held = createHoldings();
    try {
      live.add(id);
      held.take(id, (own) => void live.delete(own));
      const uids = options.uids;
      const leased = uids ? held.take(uids.acquire(), (u) => uids.release(u)) : null;
      if (leased !== null) {
        await seccompKills.watch(leased);
        held.take(leased, (u) => seccompKills.unwatch(u));
      }
      const uid = leased ?? NOBODY;
      fault('uid');
      if (spec.outputDir && leased !== null) chownSync(spec.outputDir, leased, leased);
      for (const bind of spec.binds ?? []) if (leased !== null) chownSync(bind.source, leased, leased);
      const tag = await imageTag();
      // The code runs from files read by its runtime: the writable areas need no exec unless the
      // spec runs a program from there.
      const noexec =
        !files.some((f) => f.executable) && ![workdir, '/tmp'].some((d) => spec.argv[0]?.startsWith(`${d}/`));
      const env = { PATH: '/usr/bin:/bin', HOME: '/tmp', LANG: 'C.UTF-8', TMPDIR: '/tmp', ...spec.env };
      const container = await (
        await daemon()
      ).createContainer({
        name: `warden-${id}`,
        Image: tag,
        Cmd: [WRAPPER, workdir, ...spec.argv],
        User: `${uid}:${uid}`,
        WorkingDir: '/',
        Hostname: 'warden',
        Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
        OpenStdin: true,
        StdinOnce: true,
        AttachStdin: true,
        AttachStdout: true,
        AttachStderr: true,
        Tty: false,
        Labels: { [LABEL.owner]: OWNER, [LABEL.sandbox]: id, [LABEL.backend]: 'docker' },
        HostConfig: hostConfig(spec, limits, uid, noexec),
      });
      held.take(container, (c) => ignoreGone(c.remove({ force: true })));
      fault('cgroup');
      const socket = (await container.attach({
        stream: true,
        stdin: true,
        stdout: true,
        stderr: true,
        hijack: true,
      })) as unknown as Duplex;
      held.take(socket, (s) => void s.destroy());
      const setupTag = randomBytes(9).toString('hex');
      const stdio = new ContainerStdio(socket, setupTag);
      await container.start();
      const startedAt = Math.floor(Date.now() / 1000) - 1;
      const archive = files.length
        ? tarArchive(
            files.map((f) => ({
              type: 'file',
              path: f.path,
              content: f.content,
              mode: f.executable ? 0o755 : 0o644,
            })),
          )
        : Buffer.alloc(0);
      stdio.send(Buffer.concat([Buffer.from(`${setupTag} ${archive.length}\n`), archive]));
      fault('spawned');

      let usage: ContainerUsage | undefined;
      let oom = false;
      let killedByUs = false;
      let outside: string | undefined;
      // Usage is read from the container's cgroup, found through its first process.
      const cgroups = options.cgroups;
      if (cgroups) {
        const info = await container.inspect();
        if (info.State.Pid > 0) usage = containerUsage(cgroups, info.State.Pid);
      }
      /** Why a container ended that neither the program nor Warden ended: killed or removed from outside. */
      const outsideReason = async (code: number): Promise<string | undefined> => {
        if (killedByUs || code < 128) return undefined;
        const events = await (
          await daemon()
        ).getEvents({
          since: startedAt,
          until: Math.ceil(Date.now() / 1000),
          filters: { container: [container.id], event: ['kill', 'destroy'] },
        });
        const text = await new Promise<string>((resolve) => {
          let all = '';
          (events as NodeJS.ReadableStream).on('data', (d: Buffer) => (all += d.toString()));
          events.on('end', () => resolve(all));
          events.on('error', () => resolve(all));
        });
        return text.includes('"kill"') || text.includes('"destroy"')
          ? 'the container was killed from outside Warden mid-run'
          : undefined;
      };
      // The run ends at the wrapper's trailer (the program's status, at once); Docker's own report of
      // the container's end only decides runs that ended otherwise (killed or removed from outside).
      stdio.once('trailer', (status: number) => {
        usage?.cpuMs();
        usage?.peakMemoryBytes();
        oom = usage?.oomKilled() ?? false;
        stdio.exited(status);
      });
      const exited = (async () => {
        let code: number;
        let reason: string | undefined;
        try {
          const waited = (await container.wait()) as { StatusCode: number };
          code = waited.StatusCode;
        } catch (err) {
          if (stdio.exitCode === null) outside = `lost the container mid-run: ${(err as Error).message}`;
          return stdio.exited(null);
        }
        if (stdio.exitCode !== null) return;
        try {
          const info = await container.inspect();
          oom = info.State.OOMKilled;
          if (!oom) reason = await outsideReason(code);
        } catch (err) {
          reason =
            statusOf(err) === 404
              ? 'the container was removed from outside Warden mid-run'
              : `the container's end could not be read: ${(err as Error).message}`;
        }
        if (stdio.exitCode === null) outside = reason;
        stdio.exited(code);
      })();
      held.take(exited, async (done) => {
        killedByUs = true;
        await ignoreGone(container.kill());
        await done;
      });

      return {
        backend: 'docker',
        isolation: 'container',
        warnings: spec.network?.enabled
          ? [
              ...warnings,
              "network enabled: the run shared the host's network namespace, loopback services included",
            ]
          : warnings,
        child: stdio,
        exited,
        setLimits() {
          // Memory, CPU and process limits are the container's own (pool key); CPU time is polled.
        },
        cpuMs: () => usage?.cpuMs() ?? 0,
        peakMemoryBytes: () => usage?.peakMemoryBytes() ?? 0,
        oomKilled: () => oom,
        killTree() {
          killedByUs = true;
          void ignoreGone(container.kill()).catch(() => {});
        },
        decodeExit(code, signal): DecodedExit {
          if (stdio.setupFailure !== undefined) {
            return {
              kind: 'setup_failed',
              error: `container did not start the program: ${stdio.setupFailure}`,
            };
          }
          if (outside !== undefined) return { kind: 'setup_failed', error: outside };
          if (signal) return { kind: 'exited', exitCode: null, signal };
          // The wrapper shell reports a program killed by signal N as 128 + N.
          if (code !== null && code > 128 && code < 128 + 65) {
            return { kind: 'exited', exitCode: null, signal: signalName(code - 128) };
          }
          return { kind: 'exited', exitCode: code, signal: null };
        },
        violations: (decoded) => forbiddenSyscalls(leased, decoded),
        release: () => held.release(),
      };
    } catch (err) {
      return releaseAndRethrow(held, err);
    }
  }

  /** Containers of this host's Warden processes whose owner is gone, or whose run (ours) is over. */
  async function cleanupOrphans(): Promise<string[]> {
    // No daemon here: nothing of ours can be running in one (and dockerode need not load).
    if (!existsSync(options.socketPath)) return [];
    let listed: Docker.ContainerInfo[];
    try {
      listed = await (await daemon()).listContainers({ all: true, filters: { label: [LABEL.owner] } });
    } catch {
      return []; // no daemon: nothing of ours can be running in it
    }
    const removed: string[] = [];
    for (const c of listed) {
      const owner = c.Labels[LABEL.owner] ?? '';
      const sandbox = c.Labels[LABEL.sandbox] ?? '';
      const orphan = owner === OWNER ? !live.has(sandbox) : !ownerAlive(owner);
      if (!orphan) continue;
      await ignoreGone((await daemon()).getContainer(c.Id).remove({ force: true }));
      removed.push(`docker container ${c.Names[0]?.replace(/^\//, '') ?? c.Id}`);
    }
    return removed;
  }

  async function probe(): Promise<BackendProbe> {
    const base = { backend: 'docker' as const, isolation: 'container' as const, warnings };
    let version: string;
    try {
      const v = await withTimeout((await daemon()).version(), 3000, 'no answer within 3 s');
      version = `Docker ${v.Version} (runtime ${options.runtime})`;
    } catch (err) {
      return {
        ...base,
        available: false,
        detail: `Docker daemon unreachable at ${options.socketPath}: ${(err as Error).message} (start it: scripts/dockerd.sh)`,
      };
    }
    const { tag } = imageArchive(options.image);
    if (!(await imageExists(await daemon(), tag).catch(() => false))) {
      return {
        ...base,
        available: false,
        detail: `${version}: image ${tag} is missing (build it: ${BUILD_IMAGE_COMMAND})`,
      };
    }
    const trial = await trialRun(start, options.defaults);
    if (!trial.ok) return { ...base, available: false, detail: `${version}: ${trial.detail}` };
    return {
      ...base,
      available: true,
      detail: `${version}, image ${tag}; cold start + /bin/true ${trial.ms} ms`,
    };
  }

  return {
    name: 'docker',
    isolation: 'container',
    // CPU time is the supervisor's polling of the container's cgroup; the rest is fixed at creation.
    adjustableLimits: [...SUPERVISED_LIMITS, 'cpuTimeMs'],
    start,
    probe,
    cleanupOrphans,
    async close() {
      if (options.uids) await seccompKills.release();
    },
  };
}

/**
 * Builds the docker backend's image unless it exists (`warden doctor --build-image`, set-up);
 * `onProgress` gets each step the build reports.
 */
export async function buildDockerImage(
  socketPath: string,
  name: string,
  onProgress?: (line: string) => void,
): Promise<string> {
  return ensureImage(await connect(socketPath), name, onProgress);
}
