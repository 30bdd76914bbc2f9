import type { Redis } from 'ioredis';

/**
 * "The work you are waiting for has finished", for every kind of work a request can wait on: an
 * execution (a synchronous POST /execute), a task or a validation (`?wait=true`). A worker in the same
 * process hands the end over directly (no Redis, no store read); one in another process (`warden
 * worker`, another node) publishes a notice on the service's one channel; and the store, asked every
 * STORE_CHECK_MS and once as the wait begins, backs both up. The store stays the truth: a notice only
 * says that something ended.
 */
export type FinishKind = 'execution' | 'task' | 'validation';

/**
 * How a wait ended. `done` carries the answer when the worker that wrote it runs in this process (it
 * is what the store now holds); otherwise the store is read. `ended`: the work stopped without an
 * answer (its job failed, recovery takes it up).
 */
export type WaitOutcome =
  { kind: 'done'; response?: unknown } | { kind: 'ended' } | { kind: 'timeout' } | { kind: 'aborted' };

export type FinishOutcome = { kind: 'done'; response?: unknown } | { kind: 'ended' };

export interface FinishNotices {
  /**
   * Resolves when the work is reported finished, `isDone` (the store) says so, the time is up or
   * `signal` aborts; never rejects. `isDone` is asked right away (the work may have ended before the
   * wait began) and every STORE_CHECK_MS (a notice published while the subscriber was reconnecting is
   * lost: pub/sub keeps nothing, the row is not).
   */
  wait(
    kind: FinishKind,
    id: string,
    timeoutMs: number,
    isDone: () => Promise<boolean>,
    signal?: AbortSignal,
  ): Promise<WaitOutcome>;
  /** A worker stored the work's end: the requests waiting for it, in this process or others, are told. */
  notify(kind: FinishKind, id: string, outcome: FinishOutcome): Promise<void>;
  /** Connected and subscribed (at once when this process does not listen). */
  readonly ready: Promise<unknown>;
}

const STORE_CHECK_MS = 1000;

const KINDS = new Set<string>(['execution', 'task', 'validation']);

/**
 * Waits in this process, by `<prefix>:<kind>:<id>`: several requests may wait for one task, and share
 * one periodic store check (a thousand waits for one task ask the store once a second, not a thousand
 * times).
 */
interface Waiting {
  finishers: Set<(outcome: FinishOutcome) => void>;
  check: NodeJS.Timeout;
}
const localWaiters = new Map<string, Waiting>();

/**
 * `publisher` sends notices; `subscriber` (a connection of its own, not yet connected) receives them,
 * for the processes that answer waiting requests (the API); workers pass none.
 */
export function finishNotices(options: {
  prefix: string;
  publisher: Redis;
  subscriber?: Redis;
}): FinishNotices {
  const { prefix, publisher, subscriber } = options;
  const channel = `${prefix}:finished`;
  const waiterKey = (kind: FinishKind, id: string) => `${prefix}:${kind}:${id}`;
  const handOver = (kind: FinishKind, id: string, outcome: FinishOutcome): boolean => {
    const waiting = localWaiters.get(waiterKey(kind, id));
    for (const finish of [...(waiting?.finishers ?? [])]) finish(outcome);
    return waiting !== undefined;
  };

  // Notices are `<kind>:<done|ended>:<id>`; a waiter here, if any, then reads the store.
  subscriber?.on('message', (from: string, message: string) => {
    if (from !== channel) return;
    const [kind, outcome] = message.split(':', 2);
    const id = message.slice(`${kind}:${outcome}:`.length);
    if (KINDS.has(kind!) && (outcome === 'done' || outcome === 'ended'))
      handOver(kind as FinishKind, id, { kind: outcome });
  });

  return {
    ready: subscriber ? subscriber.connect().then(() => subscriber.subscribe(channel)) : Promise.resolve(),
    wait(kind, id, timeoutMs, isDone, signal) {
      return new Promise<WaitOutcome>((resolve) => {
        const key = waiterKey(kind, id);
        const askStore = (then: () => void) => {
          isDone().then(
            (done) => done && then(),
            () => {}, // the store is away: notices (or the timeout) still decide
          );
        };
        let waiting = localWaiters.get(key);
        if (!waiting) {
          const check = setInterval(
            () => askStore(() => handOver(kind, id, { kind: 'done' })),
            STORE_CHECK_MS,
          );
          waiting = { finishers: new Set(), check };
          localWaiters.set(key, waiting);
        }
        const { finishers } = waiting;
        let settled = false;
        const finish = (outcome: WaitOutcome) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          finishers.delete(finish);
          if (finishers.size === 0 && localWaiters.get(key) === waiting) {
            clearInterval(waiting.check);
            localWaiters.delete(key);
          }
          signal?.removeEventListener('abort', onAbort);
          resolve(outcome);
        };
        const onAbort = () => finish({ kind: 'aborted' });
        const timer = setTimeout(() => finish({ kind: 'timeout' }), timeoutMs);
        finishers.add(finish);
        if (signal?.aborted) return onAbort();
        signal?.addEventListener('abort', onAbort);
        // The work may have ended before this wait began.
        askStore(() => finish({ kind: 'done' }));
      });
    },
    async notify(kind, id, outcome) {
      // Only the request that submitted an execution waits for it: found here, nobody else needs
      // telling. Any request may wait for a task or a validation, in any process.
      if (handOver(kind, id, outcome) && kind === 'execution') return;
      // If the waiter's process is not listening (or Redis is away), its store check finds the end.
      await publisher.publish(channel, `${kind}:${outcome.kind}:${id}`).catch(() => {});
    },
  };
}
