import type { Engine } from './engine.js';
import type { BackendName } from './types.js';

/**
 * The container monitor: at start-up and then every `intervalMs`, asks each backend for what is left
 * of runs that are over or of services that died (containers and runsc sandboxes by their owner
 * labels, cgroups and uid leases by their owner pid) and has it killed and removed. A sweep never
 * overlaps the previous one; a failed sweep is reported and the next one tries again.
 */
export interface ContainerMonitor {
  /** One sweep now (start-up, tests); resolves with what was removed per backend. */
  sweep(): Promise<Partial<Record<BackendName, string[]>>>;
  stop(): Promise<void>;
}

export interface MonitorOptions {
  intervalMs: number;
  onRemoved?: (backend: BackendName, removed: string[]) => void;
  onError?: (err: unknown) => void;
}

export function startContainerMonitor(
  engine: Pick<Engine, 'cleanupOrphansByBackend'>,
  options: MonitorOptions,
): ContainerMonitor {
  let running: Promise<Partial<Record<BackendName, string[]>>> | undefined;
  const sweep = () => {
    running ??= engine
      .cleanupOrphansByBackend()
      .then((removed) => {
        for (const [backend, items] of Object.entries(removed) as [BackendName, string[]][]) {
          if (items.length > 0) options.onRemoved?.(backend, items);
        }
        return removed;
      })
      .finally(() => (running = undefined));
    return running;
  };
  const timer = setInterval(() => {
    sweep().catch((err: unknown) => options.onError?.(err));
  }, options.intervalMs);
  timer.unref();
  return {
    sweep,
    async stop() {
      clearInterval(timer);
      await running?.catch(() => {});
    },
  };
}
