import { execFile, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  accessSync,
  chownSync,
  constants,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { EventEmitter } from 'node:events';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createRunCgroup, type CgroupSupport } from '../cgroups.js';
import { validateFiles } from '../files.js';
import { createHoldings, holdProcess, releaseAndRethrow } from '../holdings.js';
import { CGROUP_LIMITS, SUPERVISED_LIMITS } from '../limits.js';
import { isAlive } from '../pids.js';
import { createSpawner, LAUNCHER, launcherMissing } from '../spawner.js';
import { signalName, trialRun } from '../supervise.js';
import type {
  Backend,
  BackendProbe,
  DecodedExit,
  FaultHook,
  Limits,
  Sandbox,
  SandboxProcess,
  SandboxSpec,
  Violation,
} from '../types.js';
import { ociConfig, READY_BYTE, SANDBOX_ID, stageRootfs } from './gvisor-spec.js';
import { TrailedOutput } from './trailer.js';

export const RUNSC = '/usr/bin/runsc';
const run = promisify(execFile);

/**
 * gVisor's own threads (its kernel's Go runtime, the ptrace stubs, the gofer) live in the run's host
 * cgroup beside the run's processes; the run's process limit is RLIMIT_NPROC inside gVisor, and the
 * cgroup's pids limit only a backstop this far above it.
 */
const hostPids = (limits: Limits) => limits.maxProcesses * 16 + 1024;
const STARTUP_TIMEOUT_MS = 30_000;
/** gVisor's kernel's log line for a process that SIGSYS ended (its pid inside). */
const SIGSYS_LOGGED = /Uncaught signal: "bad system call" \(31\), PID: (\d+)/g;
/**
 * After the wrapper's trailer, runsc tears the sandbox down by itself (its state gone with it); a
 * release waits this long for that before it kills runsc (and must then delete runsc's state).
 */
const TEARDOWN_GRACE_MS = 2000;

export type GvisorPlatform = 'ptrace' | 'kvm';

export interface GvisorOptions {
  /** Limits of the probe's test run. */
  defaults: Limits;
  cgroups: CgroupSupport | null;
  /** Private state: the staged root, bundles (`gvisor/bundles/<id>`) and runsc's --root (`gvisor/state`). */
  runtimeDir: string;
  fault?: FaultHook;
}

/**
 * Descriptor of a FIFO, opened read-write without blocking: gVisor's gofer opens it for reading in
 * blocking mode (it waits for a writer), and a payload written before that open must not be lost
 * (a FIFO keeps its data while any end is open). Readable by the sandbox's uid inside; on the host
 * only root can reach it (the bundle dir is 0700).
 */
async function makeFifo(path: string): Promise<number> {
  await run('/usr/bin/mkfifo', ['-m', '0644', path]);
  return openSync(path, constants.O_RDWR | constants.O_NONBLOCK);
}

function runscVersion(): string | undefined {
  if (!existsSync(RUNSC)) return undefined;
  const out = spawnSync(RUNSC, ['--version'], { encoding: 'utf8' }).stdout;
  return out.split('\n')[0]?.trim() || 'runsc';
}

export function createGvisorBackend(options: GvisorOptions): Backend {
  const isRoot = process.getuid?.() === 0;
  const base = join(options.runtimeDir, 'gvisor');
  const stateDir = join(base, 'state');
  const bundles = join(base, 'bundles');
  const fault: FaultHook = options.fault ?? (() => {});
  const spawner = createSpawner(LAUNCHER);
  let rootfs: string | undefined;
  /** The platform in use and why not a better one (settled by the first probe, else ptrace). */
  let platform: { name: GvisorPlatform; note: string } = { name: 'ptrace', note: 'not probed yet' };
  const warnings = [
    "a forbidden system call is refused and reported in every process, without the call's name (gVisor does not say which call)",
  ];

  const runscArgs = (spec: SandboxSpec) => [
    `--root=${stateDir}`,
    `--platform=${platform.name}`,
    '--network=none',
    // Without it runsc moves its gofer and kernel into a cgroup of its own, out of the run's.
    '--ignore-cgroups',
    // The payload FIFO is the one host FIFO a sandbox can reach (its other mounts are /usr and tmpfs).
    '--host-fifo=open',
    ...(spec.binds?.length ? ['--host-uds=open'] : []),
    '--oci-seccomp',
  ];

  async function start(spec: SandboxSpec, limits: Limits): Promise<Sandbox> {
    if (!isRoot)
      throw new Error('the gvisor backend needs Warden to run as root (runsc creates the sandbox)');
    if (!options.cgroups) throw new Error('the gvisor backend needs writable cgroups for its limits');
    if (spec.network?.enabled) throw new Error('the gvisor backend runs without network (--network=none)');
    const files = validateFiles(spec.files ?? []);
    platformChosen ??= settlePlatform();
    await platformChosen;
    rootfs ??= stageRootfs(options.runtimeDir);
    const id = `${process.pid}-${randomBytes(6).toString('hex')}`;
    const bundle = join(bundles, id);
    const held = createHoldings();
    try {
      mkdirSync(stateDir, { recursive: true, mode: 0o700 });
      held.take(bundle, (dir) => rmSync(dir, { recursive: true, force: true }));
      mkdirSync(bundle, { recursive: true, mode: 0o700 });
      fault('tempdir');
      // The run's uid inside gVisor owns its output dir and binds, as the leased uid does under
      // bwrap: gVisor checks the program's access against the host files' owner and mode.
      for (const dir of [
        ...(spec.outputDir ? [spec.outputDir] : []),
        ...(spec.binds ?? []).map((b) => b.source),
      ])
        chownSync(dir, SANDBOX_ID, SANDBOX_ID);
      const support = options.cgroups;
      const cgroup = held.take(createRunCgroup(support, id), (c) => c.destroy());
      cgroup.create();
      fault('cgroup');
      cgroup.setLimits({ ...limits, maxProcesses: hostPids(limits) });

      const payloadPath = join(bundle, 'payload');
      const payloadFd = await makeFifo(payloadPath);
      const payload = held.take(new Socket({ fd: payloadFd, readable: false, writable: true }), (s) => {
        s.destroy();
      });
      payload.on('error', () => {});
      let filesDir: string | undefined;
      if (files.length > 0) {
        filesDir = join(bundle, 'files');
        for (const f of files) {
          mkdirSync(join(filesDir, f.path, '..'), { recursive: true });
          writeFileSync(join(filesDir, f.path), f.content, { mode: f.executable ? 0o755 : 0o644 });
        }
      }
      writeFileSync(
        join(bundle, 'config.json'),
        ociConfig(spec, limits, { rootfs, payload: payloadPath, ...(filesDir ? { files: filesDir } : {}) }),
      );
      // runsc removes its state when `run` returns; after a kill it stays until deleted (its files
      // are named `<id>_sandbox:<id>.*`: no runsc process is spent on a run that ended normally).
      held.take(id, async (name) => {
        if (!readdirSync(stateDir).some((f) => f.startsWith(`${name}_`))) return;
        await run(RUNSC, [`--root=${stateDir}`, 'delete', '--force', name]).catch(() => {});
      });
      const bootLog = join(bundle, 'boot.log');
      // Joins the run's cgroups first, so runsc, its gofer and gVisor's kernel are inside from the
      // start; runsc dies with the service (its gofer and kernel die with runsc).
      const child = spawn(
        '/bin/sh',
        [
          '-c',
          'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"',
          'warden-gvisor',
          ...cgroup.procsFiles,
          '--',
          '/usr/bin/setpriv',
          '--pdeathsig',
          'KILL',
          '--',
          RUNSC,
          ...runscArgs(spec),
          `--debug-log=${bootLog}`,
          '--debug-command=boot',
          'run',
          '--bundle',
          bundle,
          id,
        ],
        { stdio: ['pipe', 'pipe', 'pipe'], env: { PATH: '/usr/bin:/bin' }, cwd: '/' },
      );
      const exited = holdProcess(held, child);
      // The tag of the wrapper's trailer: the first line of its stdin, read before the program starts.
      const tag = randomBytes(9).toString('hex');
      const { stdin, stdout, stderr } = child;
      stdin.on('error', () => {});
      stdin.write(`${tag}\n`);
      /** The run's end: the trailer's status at once, else runsc's own exit (the sandbox ended). */
      const ends = new EventEmitter();
      let end: { code: number | null; signal: NodeJS.Signals | null; trailed: boolean } | undefined;
      const finish = (code: number | null, signal: NodeJS.Signals | null, trailed: boolean) => {
        if (end) return;
        end = { code, signal, trailed };
        ends.emit('exit', code, signal);
      };
      const output = new TrailedOutput(tag, (status) => finish(status, null, true));
      void exited.then(() => finish(child.exitCode, child.signalCode, false));
      // Once the trailer has come runsc is left to finish its teardown, within a grace period.
      held.take(exited, async (done) => {
        if (!end?.trailed) return;
        let grace: NodeJS.Timeout | undefined;
        await Promise.race([done, new Promise<void>((r) => (grace = setTimeout(r, TEARDOWN_GRACE_MS)))]);
        clearTimeout(grace);
      });
      fault('spawned');

      // The run's stderr is what follows the wrapper's ready byte; before it, runsc's own words.
      let ready = false;
      let setupOutput = '';
      stdout.on('data', (chunk: Buffer) => output.push(0, chunk));
      stdout.once('close', () => output.end(0));
      const up = new Promise<boolean>((resolve) => {
        stderr.on('data', (chunk: Buffer) => {
          if (!ready) {
            const at = chunk.indexOf(READY_BYTE);
            setupOutput += chunk.subarray(0, at < 0 ? chunk.length : at).toString('utf8');
            if (at < 0) return;
            ready = true;
            resolve(true);
            chunk = chunk.subarray(at + 1);
          }
          if (chunk.length > 0) output.push(1, chunk);
        });
        stderr.once('close', () => output.end(1));
        void exited.then(() => resolve(false));
      });
      let timer: NodeJS.Timeout | undefined;
      const started = await Promise.race([
        up,
        new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), STARTUP_TIMEOUT_MS))),
      ]).finally(() => clearTimeout(timer));
      if (!started) {
        throw new Error(
          `gVisor sandbox did not start: ${setupOutput.trim() || `runsc exit ${child.exitCode ?? child.signalCode ?? 'timeout'}`}`,
        );
      }

      const processView: SandboxProcess = {
        stdin,
        stdout: output.stdout,
        stderr: output.stderr,
        stdio: [stdin, output.stdout, output.stderr, payload],
        get exitCode() {
          return end?.code ?? null;
        },
        get signalCode() {
          return end?.signal ?? null;
        },
        once: (event, listener) => ends.once(event, listener),
      };
      let killedByWarden = false;
      /** gVisor's kernel logs how the program ended; without that line it was the kernel that died. */
      const kernelLog = () => {
        try {
          return readFileSync(bootLog, 'utf8');
        } catch {
          return '';
        }
      };
      const programEnded = () => kernelLog().includes('application exiting with');

      return {
        backend: 'gvisor',
        isolation: 'gvisor',
        warnings: [...warnings, `platform ${platform.name}`],
        child: processView,
        exited,
        setLimits(runLimits) {
          cgroup.setLimits({ ...runLimits, maxProcesses: hostPids(limits) });
        },
        cpuMs: () => cgroup.cpuMs(),
        peakMemoryBytes: () => cgroup.peakMemoryBytes(),
        oomKilled: () => cgroup.oomKilled(),
        // runsc's gofer and sandbox die with it (parent-death signal); release sweeps the cgroup. After
        // the trailer the wrapper has exited: gVisor's kernel ends what the program left, and runsc
        // its sandbox, by themselves (release kills runsc if that takes too long).
        killTree() {
          if (end?.trailed) return;
          if (!end) killedByWarden = true;
          child.kill('SIGKILL');
        },
        decodeExit(code, signal): DecodedExit {
          if (signal || killedByWarden || cgroup.oomKilled()) {
            return { kind: 'exited', exitCode: null, signal: signal ?? 'SIGKILL' };
          }
          if (!end?.trailed && !programEnded()) {
            return {
              kind: 'setup_failed',
              error: `the gVisor sandbox ended before the program did (runsc exit ${code}): its kernel was killed or crashed`,
            };
          }
          // The wrapper (and runsc) report a program killed by signal N as exit status 128 + N.
          if (code !== null && code > 128 && code < 128 + 65) {
            return { kind: 'exited', exitCode: null, signal: signalName(code - 128) };
          }
          return { kind: 'exited', exitCode: code, signal: null };
        },
        violations(decoded): Promise<Violation[]> {
          // gVisor's kernel logs each process that a signal ended unhandled: a forbidden call's trap
          // is SIGSYS (31), in the program or any process it started (written before the wrapper's
          // trailer: the process died before its parent, then the wrapper, saw it end).
          const pids = new Set([...kernelLog().matchAll(SIGSYS_LOGGED)].map((m) => m[1] ?? '?'));
          const stopped = (who: string): Violation => ({
            rule: 'forbidden_syscall',
            message: `${who} was stopped for calling a forbidden system call`,
          });
          if (pids.size > 0)
            return Promise.resolve([...pids].map((pid) => stopped(`process ${pid} of the run`)));
          const trapped = decoded.kind === 'exited' && decoded.signal === 'SIGSYS';
          return Promise.resolve(trapped ? [stopped('the program')] : []);
        },
        release: () => held.release(),
      };
    } catch (err) {
      return releaseAndRethrow(held, err);
    }
  }

  /**
   * KVM when /dev/kvm is there and a sandbox starts on it within a few seconds (nested
   * virtualisation may offer the device and then never run a guest), else ptrace.
   */
  async function choosePlatform(): Promise<void> {
    try {
      accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    } catch {
      platform = { name: 'ptrace', note: 'kvm: no usable /dev/kvm' };
      return;
    }
    if (!options.cgroups) {
      platform = { name: 'ptrace', note: 'kvm: not tried without cgroups' };
      return;
    }
    const dir = join(base, 'kvm-probe');
    mkdirSync(dir, { recursive: true });
    // In a cgroup of its own: on a KVM that never runs a guest, `runsc do`'s sandbox (in a session,
    // as nobody, spinning) outlives a kill of runsc's process group; removing the cgroup kills it.
    const cgroup = createRunCgroup(options.cgroups, `${process.pid}-kvm-probe`);
    let ok = false;
    try {
      cgroup.create();
      const probe = await spawner.spawn(
        [{ kind: 'null' }, { kind: 'null' }, { kind: 'null' }],
        [
          '--keep-fds',
          '2',
          ...cgroup.procsFiles.flatMap((f) => ['--cgroup', f]),
          '--',
          RUNSC,
          `--root=${dir}`,
          '--platform=kvm',
          '--network=none',
          '--ignore-cgroups',
          'do',
          '/bin/true',
        ],
      );
      ok = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), 5000);
        probe.once('exit', (code) => {
          clearTimeout(timer);
          resolve(code === 0);
        });
      });
    } catch {
      ok = false;
    } finally {
      await cgroup.destroy().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    }
    platform = ok
      ? { name: 'kvm', note: 'kvm' }
      : { name: 'ptrace', note: 'kvm: /dev/kvm is there but a sandbox did not start on it within 5 s' };
  }

  /**
   * Settled once per host, runsc and kernel (a KVM that does not work costs its timeout to find out),
   * kept in the state dir for the next start of the service.
   */
  async function settlePlatform(): Promise<void> {
    const file = join(base, 'platform.json');
    const key = `${runscVersion()} ${readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim()}`;
    try {
      const saved = JSON.parse(readFileSync(file, 'utf8')) as {
        key: string;
        name: GvisorPlatform;
        note: string;
      };
      if (saved.key === key) {
        platform = { name: saved.name, note: saved.note };
        return;
      }
    } catch {
      /* not settled yet */
    }
    await choosePlatform();
    mkdirSync(base, { recursive: true });
    writeFileSync(file, JSON.stringify({ key, ...platform }));
  }
  let platformChosen: Promise<void> | undefined;

  async function probe(): Promise<BackendProbe> {
    const probeBase = { backend: 'gvisor' as const, isolation: 'gvisor' as const, warnings };
    const version = runscVersion();
    if (!version) {
      return { ...probeBase, available: false, detail: 'runsc is not installed (apt-get install runsc)' };
    }
    if (!isRoot) return { ...probeBase, available: false, detail: `${version}: needs Warden to run as root` };
    if (!existsSync(LAUNCHER)) return { ...probeBase, available: false, detail: launcherMissing(LAUNCHER) };
    platformChosen ??= settlePlatform();
    await platformChosen;
    const trial = await trialRun(start, options.defaults);
    if (!trial.ok) return { ...probeBase, available: false, detail: `${version}: ${trial.detail}` };
    return {
      ...probeBase,
      available: true,
      detail: `${version}, platform ${platform.name} (${platform.note}); cold start + /bin/true ${trial.ms} ms`,
    };
  }

  return {
    name: 'gvisor',
    isolation: 'gvisor',
    // The process limit is RLIMIT_NPROC inside gVisor, fixed when the sandbox starts.
    adjustableLimits: [...SUPERVISED_LIMITS, ...CGROUP_LIMITS.filter((l) => l !== 'maxProcesses')],
    start,
    probe,
    close: () => spawner.close(),
    /**
     * Sandboxes of Warden processes that are gone: their processes (all in the run's cgroup) are
     * killed, runsc's state deleted, the cgroup and the bundle removed. Ids are `<ownerPid>-<hex>`.
     */
    async cleanupOrphans() {
      // Bundles, and runsc's own list (a start that died between its two steps leaves one of them).
      const listed = existsSync(stateDir)
        ? await run(RUNSC, [`--root=${stateDir}`, 'list', '-quiet']).then(
            (out) => out.stdout.split('\n').filter(Boolean),
            () => [],
          )
        : [];
      const ids = new Set([...(existsSync(bundles) ? readdirSync(bundles) : []), ...listed]);
      const removed: string[] = [];
      for (const id of ids) {
        const owner = Number(id.split('-')[0]);
        if (Number.isInteger(owner) && owner > 0 && isAlive(owner)) continue;
        if (options.cgroups) await createRunCgroup(options.cgroups, id).destroy();
        await run(RUNSC, [`--root=${stateDir}`, 'delete', '--force', id]).catch(() => {});
        rmSync(join(bundles, id), { recursive: true, force: true });
        removed.push(`gvisor sandbox ${id}`);
      }
      return removed;
    },
  };
}
