import {
  RUN_INPUT_FIELDS,
  type Backend,
  type Limits,
  type RunSpec,
  type Sandbox,
  type SandboxSpec,
} from './types.js';

interface Idle {
  sandbox: Sandbox;
  since: number;
}

interface Entry {
  spec: SandboxSpec;
  limits: Limits;
  target: number;
  idle: Idle[];
  starting: number;
  /** Pre-started sandboxes that died before use, recently: a crash loop pauses refills. */
  recentDeaths: number[];
  pausedUntil: number;
}

/**
 * What a pre-started sandbox must share with a run to serve it: the whole spec (any field, including
 * ones added later, is compared) except what only the run brings, and every limit the backend cannot
 * change after start in the mode it runs in here (`adjustable`). Specs with files are never pooled.
 */
export function poolKey(
  spec: SandboxSpec | RunSpec,
  limits: Limits,
  adjustable: readonly (keyof Limits)[],
): string | undefined {
  if (spec.files && spec.files.length > 0) return undefined;
  const shape: Record<string, unknown> = {
    ...spec,
    env: spec.env ?? {},
    network: { enabled: spec.network?.enabled ?? false, loopback: spec.network?.loopback ?? false },
    workdir: spec.workdir ?? '/box',
    readOnlyPaths: spec.readOnlyPaths ?? [],
  };
  for (const runOnly of ['limits', 'label', ...RUN_INPUT_FIELDS]) delete shape[runOnly];
  const fixed = Object.entries(limits).filter(([k]) => !adjustable.includes(k as keyof Limits));
  return JSON.stringify([Object.entries(shape).sort(), fixed.sort()]);
}

/**
 * Keeps N sandboxes per spec started and waiting (runtime up, blocked on fd 3), each used for exactly
 * one run. A run never waits for a refill: with no idle sandbox it starts cold. A sandbox taken from
 * here belongs to the run that took it; the pool releases only those that were never taken.
 */
export class SandboxPool {
  private readonly entries = new Map<string, Entry>();
  private readonly sweeper: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly backend: Backend,
    private readonly maxIdleMs: number,
    /** Work the engine's settle() and shutdown() wait for: sandboxes starting and being released. */
    private readonly track: (work: Promise<unknown>) => void,
    private readonly onError: (err: unknown) => void = () => {},
  ) {
    this.sweeper = setInterval(() => this.sweep(), Math.max(1000, maxIdleMs / 4));
    this.sweeper.unref();
  }

  register(spec: SandboxSpec, limits: Limits, size: number): void {
    const key = poolKey(spec, limits, this.backend.adjustableLimits);
    if (key === undefined || size <= 0) return;
    const entry = this.entries.get(key) ?? {
      spec,
      limits,
      target: 0,
      idle: [],
      starting: 0,
      recentDeaths: [],
      pausedUntil: 0,
    };
    entry.target = size;
    this.entries.set(key, entry);
    this.fill(entry);
  }

  /** A pre-started sandbox that can serve a run of `spec` under `limits`, if one is idle. */
  take(spec: RunSpec, limits: Limits): Sandbox | undefined {
    const key = poolKey(spec, limits, this.backend.adjustableLimits);
    const entry = key === undefined ? undefined : this.entries.get(key);
    if (!entry) return undefined;
    let idle = entry.idle.shift();
    // One that died a moment ago (its exit not handled yet) cannot serve: give it back, take the next.
    while (idle && (idle.sandbox.child.exitCode !== null || idle.sandbox.child.signalCode !== null)) {
      this.release(idle.sandbox);
      idle = entry.idle.shift();
    }
    // Spawning blocks the event loop for a moment: let the run's hand-off go first.
    setImmediate(() => this.fill(entry));
    return idle?.sandbox;
  }

  /** Idle sandboxes per registered spec (by label), for metrics and /health. */
  sizes(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const e of this.entries.values()) {
      const label = e.spec.label ?? e.spec.argv[0] ?? '?';
      out[label] = (out[label] ?? 0) + e.idle.length;
    }
    return out;
  }

  /** Resolves once every registered spec has its target of idle sandboxes (or the time is up). */
  async ready(timeoutMs = 10_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if ([...this.entries.values()].every((e) => e.idle.length >= e.target)) return true;
      await new Promise((r) => setTimeout(r, 10));
    }
    return false;
  }

  shutdown(): void {
    this.closed = true;
    clearInterval(this.sweeper);
    for (const e of this.entries.values()) for (const i of e.idle.splice(0)) this.release(i.sandbox);
  }

  private fill(entry: Entry): void {
    if (this.closed || Date.now() < entry.pausedUntil) return;
    while (entry.idle.length + entry.starting < entry.target) {
      entry.starting++;
      const starting = this.backend
        .start(entry.spec, entry.limits)
        .then((sandbox) => {
          entry.starting--;
          if (this.closed) return this.release(sandbox);
          const idle = { sandbox, since: Date.now() };
          entry.idle.push(idle);
          void sandbox.exited.then(() => this.died(entry, idle));
        })
        .catch((err: unknown) => {
          entry.starting--;
          entry.pausedUntil = Date.now() + 5000;
          this.onError(err);
        });
      this.track(starting);
    }
  }

  private release(sandbox: Sandbox): void {
    this.track(sandbox.release());
  }

  /** A pre-started sandbox ended before use (crash): replace it. */
  private died(entry: Entry, idle: Idle): void {
    const at = entry.idle.indexOf(idle);
    if (at < 0) return; // taken for a run, or released by the sweep or shutdown
    entry.idle.splice(at, 1);
    this.release(idle.sandbox);
    const now = Date.now();
    entry.recentDeaths = [...entry.recentDeaths.filter((t) => now - t < 60_000), now];
    if (entry.recentDeaths.length >= 3) {
      entry.pausedUntil = now + 10_000;
      this.onError(new Error(`pre-started sandboxes keep dying (${entry.spec.argv[0]}): refills paused`));
    }
    this.fill(entry);
  }

  private sweep(): void {
    const now = Date.now();
    for (const entry of this.entries.values()) {
      const stale = entry.idle.filter((i) => now - i.since > this.maxIdleMs);
      entry.idle = entry.idle.filter((i) => !stale.includes(i));
      for (const i of stale) this.release(i.sandbox);
      this.fill(entry);
    }
  }
}
