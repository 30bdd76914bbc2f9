import { ADJUSTABLE_LIMITS } from './limits.js';
import type { Backend, Limits, SandboxSpec, StartedSandbox } from './types.js';

interface Idle {
  sandbox: StartedSandbox;
  since: number;
}

interface Entry {
  spec: SandboxSpec;
  target: number;
  idle: Idle[];
  starting: number;
  /** Pre-started sandboxes that died before use, recently: a crash loop pauses refills. */
  recentDeaths: number[];
  pausedUntil: number;
}

/**
 * What a pre-started sandbox must share with a run to serve it: everything fixed at start-up.
 * Limits that are cgroup knobs or timers can still be set when the run begins.
 */
export function poolKey(spec: SandboxSpec): string | undefined {
  if (spec.files && spec.files.length > 0) return undefined;
  const fixed: Partial<Limits> = { ...spec.limits };
  for (const k of ADJUSTABLE_LIMITS) delete fixed[k];
  return JSON.stringify([
    spec.argv,
    spec.env ?? {},
    spec.network?.enabled ?? false,
    spec.workdir ?? '/box',
    spec.readOnlyPaths ?? [],
    Object.entries(fixed).sort(),
  ]);
}

/**
 * Keeps N sandboxes per spec started and waiting (runtime up, blocked on fd 3), each used for exactly
 * one run. A run never waits for a refill: with no idle sandbox it starts cold.
 */
export class SandboxPool {
  private readonly entries = new Map<string, Entry>();
  private readonly sweeper: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly backend: Backend,
    private readonly maxIdleMs: number,
    private readonly onError: (err: unknown) => void = () => {},
  ) {
    this.sweeper = setInterval(() => this.sweep(), Math.max(1000, maxIdleMs / 4));
    this.sweeper.unref();
  }

  register(spec: SandboxSpec, size: number): void {
    const key = poolKey(spec);
    if (key === undefined || size <= 0) return;
    const entry = this.entries.get(key) ?? {
      spec,
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

  take(spec: SandboxSpec): StartedSandbox | undefined {
    const key = poolKey(spec);
    const entry = key === undefined ? undefined : this.entries.get(key);
    if (!entry) return undefined;
    const idle = entry.idle.shift();
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

  async shutdown(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweeper);
    const all = [...this.entries.values()].flatMap((e) => e.idle.splice(0));
    await Promise.all(all.map((i) => i.sandbox.destroy().catch(this.onError)));
  }

  private fill(entry: Entry): void {
    if (this.closed || Date.now() < entry.pausedUntil) return;
    while (entry.idle.length + entry.starting < entry.target) {
      entry.starting++;
      this.backend
        .start(entry.spec)
        .then((sandbox) => {
          entry.starting--;
          if (this.closed) return void sandbox.destroy();
          const idle = { sandbox, since: Date.now() };
          entry.idle.push(idle);
          void sandbox.exited.then(() => this.died(entry, idle));
        })
        .catch((err: unknown) => {
          entry.starting--;
          entry.pausedUntil = Date.now() + 5000;
          this.onError(err);
        });
    }
  }

  /** A pre-started sandbox ended before use (crash, or destroyed by us): replace it. */
  private died(entry: Entry, idle: Idle): void {
    const at = entry.idle.indexOf(idle);
    if (at < 0) return; // taken for a run: its end is the run's business
    entry.idle.splice(at, 1);
    void idle.sandbox.destroy().catch(this.onError);
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
      for (const i of stale) void i.sandbox.destroy().catch(this.onError);
      this.fill(entry);
    }
  }
}
