import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { SandboxConfig } from '../config/schema.js';
import { createBwrapBackend } from './backends/bwrap.js';
import { createProcessBackend } from './backends/process.js';
import { detectCgroups } from './cgroups.js';
import { ADJUSTABLE_LIMITS, resolveLimits } from './limits.js';
import { SandboxPool } from './pool.js';
import { UidLeases } from './uids.js';
import { settleTeardowns } from './supervise.js';
import {
  BACKEND_NAMES,
  type Backend,
  type BackendName,
  type BackendProbe,
  type Limits,
  type RunResult,
  type RunSpec,
  type SandboxSpec,
} from './types.js';

export interface Engine {
  readonly defaultBackend: BackendName;
  /** One run in a fresh sandbox (pre-started when the pool has a matching one). Never throws. */
  run(spec: RunSpec, options?: { backend?: BackendName }): Promise<RunResult>;
  /** Keep `size` sandboxes of this spec started on the default backend. */
  prewarm(spec: SandboxSpec, size: number): void;
  /** Resolves when the pool is full (for benchmarks and start-up). */
  poolReady(timeoutMs?: number): Promise<boolean>;
  poolSizes(): Record<string, number>;
  activeRuns(): number;
  probe(): Promise<BackendProbe[]>;
  cleanupOrphans(): Promise<string[]>;
  /** Resolves once every finished run's sandbox is fully torn down. */
  settle(): Promise<void>;
  shutdown(): Promise<void>;
}

export class BackendUnavailableError extends Error {}

export interface EngineOptions {
  /** Private state of this host's sandboxes (uid leases, the sandbox /etc). */
  runtimeDir?: string;
  onError?: (err: unknown) => void;
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

function pick<T extends object, K extends keyof T>(obj: T, keys: readonly K[]): Pick<T, K> {
  const out = {} as Pick<T, K>;
  for (const k of keys) out[k] = obj[k];
  return out;
}

export function createEngine(config: SandboxConfig, options: EngineOptions = {}): Engine {
  const isRoot = process.getuid?.() === 0;
  const runtimeDir = resolve(options.runtimeDir ?? (isRoot ? '/run/warden' : join('.warden', 'run')));
  mkdirSync(runtimeDir, { recursive: true, mode: 0o755 });
  const defaults: Limits = resolveLimits(undefined, config.limits, config.maxLimits);
  const cg = isRoot ? detectCgroups(config.cgroupParent) : { version: null, reason: 'Warden is not root' };

  const backends = new Map<BackendName, Backend>();
  backends.set(
    'bwrap',
    createBwrapBackend({
      defaults,
      uids: isRoot ? new UidLeases(config.uidBase, config.uidCount, join(runtimeDir, 'uids')) : null,
      cgroups: cg.version === null ? null : cg,
      cgroupsUnavailable: cg.version === null ? cg.reason : undefined,
      runtimeDir,
    }),
  );
  backends.set('process', createProcessBackend(defaults));

  const defaultBackend = config.backend;
  const defaultImpl = backends.get(defaultBackend);
  const pool = defaultImpl ? new SandboxPool(defaultImpl, config.pool.maxIdleMs, options.onError) : null;
  let active = 0;

  async function run(spec: RunSpec, opts: { backend?: BackendName } = {}): Promise<RunResult> {
    const name = opts.backend ?? defaultBackend;
    const backend = backends.get(name);
    if (!backend)
      return resultWithoutRun(name, 'error', { error: `backend ${name} is not available on this host` });
    const limits = resolveLimits(spec.limits, config.limits, config.maxLimits);
    const sandboxSpec: SandboxSpec = { ...spec, limits };
    active++;
    try {
      const warm = name === defaultBackend ? pool?.take(sandboxSpec) : undefined;
      if (warm) {
        const result = await warm.execute({
          stdin: spec.stdin,
          payload: spec.payload,
          limits: pick(limits, ADJUSTABLE_LIMITS),
          signal: spec.signal,
          onOutput: spec.onOutput,
        });
        return { ...result, pooled: true };
      }
      const sandbox = await backend.start(sandboxSpec);
      return await sandbox.execute({
        stdin: spec.stdin,
        payload: spec.payload,
        signal: spec.signal,
        onOutput: spec.onOutput,
      });
    } catch (err) {
      options.onError?.(err);
      return resultWithoutRun(name, 'error', { error: (err as Error).message });
    } finally {
      active--;
    }
  }

  return {
    defaultBackend,
    run,
    prewarm(spec, size) {
      pool?.register({ ...spec, limits: resolveLimits(spec.limits, config.limits, config.maxLimits) }, size);
    },
    poolReady: (timeoutMs) => pool?.ready(timeoutMs) ?? Promise.resolve(true),
    poolSizes: () => pool?.sizes() ?? {},
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
    async cleanupOrphans() {
      const removed = await Promise.all([...backends.values()].map((b) => b.cleanupOrphans()));
      return removed.flat();
    },
    settle: settleTeardowns,
    async shutdown() {
      await pool?.shutdown();
      await settleTeardowns();
    },
  };
}

export { BACKEND_NAMES };
