import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { SandboxConfig } from '../config/schema.js';
import { createBwrapBackend } from './backends/bwrap.js';
import { createDockerBackend } from './backends/docker.js';
import { createGvisorBackend } from './backends/gvisor.js';
import { createProcessBackend } from './backends/process.js';
import { detectCgroups } from './cgroups.js';
import { resolveLimits } from './limits.js';
import { SandboxPool } from './pool.js';
import { superviseRun } from './supervise.js';
import { UidLeases } from './uids.js';
import {
  BACKEND_NAMES,
  type Backend,
  type BackendName,
  type BackendProbe,
  type FaultHook,
  type Limits,
  type RunResult,
  type RunSpec,
  type Sandbox,
  type SandboxSpec,
} from './types.js';

export interface Engine {
  /** The backend runs use unless they name another: the configured one, or its fallback (requireUsable). */
  readonly defaultBackend: BackendName;
  /**
   * Probes the configured backend (and the others, for requests that name one). When it cannot run
   * here, moves the default to the first working `sandbox.fallback`, or throws
   * BackendUnavailableError saying why: the service must not start on weaker isolation unasked.
   */
  requireUsable(): Promise<BackendName>;
  /** One run in a fresh sandbox (pre-started when the pool has a matching one). Never throws. */
  run(spec: RunSpec, options?: { backend?: BackendName }): Promise<RunResult>;
  /**
   * Keep `size` sandboxes of this spec started on the default backend, and `sandbox.pools.<name>.size`
   * on each other backend from its first run on.
   */
  prewarm(spec: SandboxSpec, size: number): void;
  /** Resolves when every pool is full (for benchmarks and start-up). */
  poolReady(timeoutMs?: number): Promise<boolean>;
  poolSizes(): Record<string, number>;
  activeRuns(): number;
  probe(): Promise<BackendProbe[]>;
  cleanupOrphans(): Promise<string[]>;
  /**
   * What each backend removed. Backends one after another, uid leases' owner (bwrap) last, so no
   * lease is reclaimed while a container of the dead owner still runs under its uid.
   */
  cleanupOrphansByBackend(): Promise<Partial<Record<BackendName, string[]>>>;
  /** Resolves once every finished run's sandbox is fully torn down. */
  settle(): Promise<void>;
  shutdown(): Promise<void>;
}

export class BackendUnavailableError extends Error {}

/** The longest a pool's refill waits for the pooled runs in progress (see `yielding`). */
const REFILL_YIELD_MS = 500;

export interface EngineOptions {
  /** Private state of this host's sandboxes (uid leases, the sandbox /etc). */
  runtimeDir?: string;
  onError?: (err: unknown) => void;
  /** Tests only: called at each step of a run's life and of a sandbox's start; a throw fails that step. */
  fault?: FaultHook;
}

/** A RunResult for a verdict reached without any run (Warden's own failure, static rejection…). */
export function resultWithoutRun(
  backend: BackendName,
  status: RunResult['status'],
  details: { error?: string; stderr?: string } = {},
): RunResult {
  return {
    status,
    exitCode: null,
    signal: null,
    stdout: '',
    stderr: details.stderr ?? '',
    truncated: { stdout: false, stderr: false },
    usage: { wallMs: 0, cpuMs: 0, peakMemoryBytes: 0 },
    violations: [],
    backend,
    isolation: status === 'error' && backend !== 'process' ? 'namespaces' : 'none',
    pooled: false,
    warnings: [],
    ...(details.error !== undefined ? { error: details.error } : {}),
  };
}

export function createEngine(config: SandboxConfig, options: EngineOptions = {}): Engine {
  const isRoot = process.getuid?.() === 0;
  const runtimeDir = resolve(options.runtimeDir ?? (isRoot ? '/run/warden' : join('.warden', 'run')));
  mkdirSync(runtimeDir, { recursive: true, mode: 0o755 });
  const defaults: Limits = resolveLimits(undefined, config.limits, config.maxLimits);
  const cg = isRoot ? detectCgroups(config.cgroupParent) : { version: null, reason: 'Warden is not root' };
  const fault: FaultHook = options.fault ?? (() => {});

  const backends = new Map<BackendName, Backend>();
  backends.set(
    'bwrap',
    createBwrapBackend({
      defaults,
      uids: isRoot ? new UidLeases(config.uidBase, config.uidCount, join(runtimeDir, 'uids')) : null,
      cgroups: cg.version === null ? null : cg,
      cgroupsUnavailable: cg.version === null ? cg.reason : undefined,
      runtimeDir,
      fault,
    }),
  );
  backends.set(
    'docker',
    createDockerBackend({
      defaults,
      // The same lease directory as bwrap's: no two sandboxes of any backend share a host uid.
      uids: isRoot ? new UidLeases(config.uidBase, config.uidCount, join(runtimeDir, 'uids')) : null,
      cgroups: cg.version === null ? null : cg,
      ...config.docker,
      fault,
    }),
  );
  backends.set(
    'gvisor',
    createGvisorBackend({ defaults, cgroups: cg.version === null ? null : cg, runtimeDir, fault }),
  );
  backends.set('process', createProcessBackend(fault));

  /** Releases and pool starts in flight: settle() and shutdown() wait for them. */
  const pending = new Set<Promise<unknown>>();
  const track = (work: Promise<unknown>) => {
    const p = work.catch((err: unknown) => options.onError?.(err)).finally(() => pending.delete(p));
    pending.add(p);
  };
  const settle = async () => {
    while (pending.size > 0) await Promise.all([...pending]);
  };

  /** Runs on a pre-started sandbox, until they end: refills yield to them. */
  const pooledRuns = new Set<Promise<void>>();
  /**
   * A pool's starts (refills after a run took a sandbox) begin once the pooled runs in progress have
   * ended, or after REFILL_YIELD_MS: a start's spawns block the event loop and its runtime's boot
   * takes a core from the program just handed a sandbox (on gVisor ≈ 4 ms of a 12 ms run here).
   */
  const yielding = (impl: Backend): Backend => ({
    ...impl,
    async start(spec, limits) {
      let timer: NodeJS.Timeout | undefined;
      if (pooledRuns.size > 0)
        await Promise.race([
          Promise.all(pooledRuns),
          new Promise((r) => (timer = setTimeout(r, REFILL_YIELD_MS))),
        ]);
      clearTimeout(timer);
      return impl.start(spec, limits);
    },
  });
  let defaultBackend = config.backend;
  const poolOf = (impl: Backend | undefined) =>
    impl ? new SandboxPool(yielding(impl), config.pool.maxIdleMs, track, options.onError) : null;
  let pool = poolOf(backends.get(defaultBackend));
  /** Specs prewarmed on the default backend: the other backends' pools keep them too, once used. */
  const prewarmed: SandboxSpec[] = [];
  const others = new Map<BackendName, SandboxPool>();
  let closed = false;
  /** The pool of a backend that is not the default, opened by the first run that used it. */
  function otherPool(name: BackendName, open: boolean): SandboxPool | undefined {
    let other = others.get(name);
    const size = config.pools[name].size;
    if (other || !open || size === 0 || closed) return other;
    other = poolOf(backends.get(name)) ?? undefined;
    if (other) others.set(name, other);
    for (const spec of prewarmed)
      other?.register(spec, resolveLimits(spec.limits, config.limits, config.maxLimits), size);
    return other;
  }
  /** Backends found unable to run here (requireUsable), with why, and where their runs go instead. */
  const unusable = new Map<BackendName, { why: string; fallback?: BackendName }>();

  async function requireUsable(): Promise<BackendName> {
    // The others too only when there is somewhere to fall back to (a probe starts a sandbox).
    const probed = [...backends.values()].filter(
      (b) => b.name !== 'process' && (b.name === config.backend || config.fallback.length > 0),
    );
    const probes = await Promise.all(probed.map((b) => b.probe()));
    const working = (name: BackendName) =>
      name === 'process' || probes.some((p) => p.backend === name && p.available);
    const fallback = config.fallback.find(working);
    for (const p of probes) {
      if (!p.available) unusable.set(p.backend, { why: p.detail, ...(fallback ? { fallback } : {}) });
    }
    const down = unusable.get(config.backend);
    if (!down) return defaultBackend;
    if (!fallback) {
      throw new BackendUnavailableError(
        `sandbox.backend ${config.backend} cannot run on this host (${down.why}); fix it (see warden doctor) or name a backend to use instead in sandbox.fallback`,
      );
    }
    pool?.shutdown();
    defaultBackend = fallback;
    pool = poolOf(backends.get(fallback));
    return fallback;
  }
  let active = 0;

  /**
   * A run's whole life, top to bottom: acquire a sandbox (pre-started or cold) → its limits in force
   * → run → collect the result → release everything it held, in the one `finally`, whatever failed.
   */
  async function run(spec: RunSpec, opts: { backend?: BackendName } = {}): Promise<RunResult> {
    const asked = opts.backend ?? config.backend;
    // A backend that cannot run here gives its runs to the fallback, saying so in every result.
    const down = unusable.get(asked);
    const name = down?.fallback ?? asked;
    const fellBack = down?.fallback
      ? [`backend ${asked} cannot run on this host (${down.why}): this run used the fallback ${name}`]
      : [];
    const backend = backends.get(name);
    if (!backend)
      return resultWithoutRun(name, 'error', { error: `backend ${name} is not available on this host` });
    const limits = resolveLimits(spec.limits, config.limits, config.maxLimits);
    let sandbox: Sandbox | undefined;
    let ended = () => {};
    active++;
    try {
      // Acquire: an idle pre-started sandbox whose fixed limits are this run's, else a cold one.
      const warm = (name === defaultBackend ? pool : otherPool(name, false))?.take(spec, limits);
      if (warm) {
        const running = new Promise<void>((r) => (ended = r)).then(() => void pooledRuns.delete(running));
        pooledRuns.add(running);
      }
      sandbox = warm ?? (await backend.start(spec, limits));
      if (name !== defaultBackend) otherPool(name, true);
      fault('acquired');
      // Limits: a cold sandbox was started under them; a pre-started one takes the run's now,
      // before its code arrives (the pool key guarantees the rest already are the run's).
      if (warm) warm.setLimits(limits);
      fault('limited');
      // Run and collect.
      const result = await superviseRun(sandbox, spec, limits);
      fault('ran');
      return { ...result, pooled: warm !== undefined, warnings: [...fellBack, ...result.warnings] };
    } catch (err) {
      options.onError?.(err);
      return resultWithoutRun(name, 'error', { error: (err as Error).message });
    } finally {
      // Release: processes, cgroup, uid lease, temp dir. Not awaited (removing a cgroup waits for
      // the kernel to reap the last processes: not the caller's time), but tracked for settle().
      if (sandbox) track(sandbox.release());
      ended();
      active--;
    }
  }

  async function cleanupOrphansByBackend(): Promise<Partial<Record<BackendName, string[]>>> {
    const order = [...backends.keys()].sort((a, b) => Number(a === 'bwrap') - Number(b === 'bwrap'));
    const removed: Partial<Record<BackendName, string[]>> = {};
    for (const name of order) removed[name] = await backends.get(name)!.cleanupOrphans();
    return removed;
  }
  async function cleanupOrphans(): Promise<string[]> {
    return Object.values(await cleanupOrphansByBackend()).flat();
  }

  return {
    get defaultBackend() {
      return defaultBackend;
    },
    requireUsable,
    run,
    prewarm(spec, size) {
      const limits = resolveLimits(spec.limits, config.limits, config.maxLimits);
      pool?.register(spec, limits, size);
      prewarmed.push(spec);
      for (const [name, other] of others) other.register(spec, limits, config.pools[name].size);
    },
    poolReady: async (timeoutMs) =>
      (await Promise.all([pool, ...others.values()].map((p) => p?.ready(timeoutMs) ?? true))).every(Boolean),
    // The default backend's pools by language; another backend's as `<backend>/<language>`.
    poolSizes: () =>
      Object.assign(
        pool?.sizes() ?? {},
        ...[...others].map(([name, other]) =>
          Object.fromEntries(Object.entries(other.sizes()).map(([label, n]) => [`${name}/${label}`, n])),
        ),
      ) as Record<string, number>,
    activeRuns: () => active,
    async probe() {
      return Promise.all(
        BACKEND_NAMES.map(async (name): Promise<BackendProbe> => {
          const backend = backends.get(name);
          if (backend) return backend.probe();
          return {
            backend: name,
            available: false,
            isolation: name === 'gvisor' ? 'gvisor' : name === 'docker' ? 'container' : 'none',
            detail: 'not built yet',
            warnings: [],
          };
        }),
      );
    },
    cleanupOrphans,
    cleanupOrphansByBackend,
    settle,
    async shutdown() {
      closed = true;
      pool?.shutdown();
      for (const other of others.values()) other.shutdown();
      await settle();
      await Promise.all([...backends.values()].map((b) => b.close?.()));
    },
  };
}

export { BACKEND_NAMES };
