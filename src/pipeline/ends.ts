import { EventEmitter } from 'node:events';

/**
 * Ends of tasks and validations stored by this process's workers, told to this process's waiting
 * requests (`?wait=true`). With the API and the workers in one process (`warden serve`) a waiter
 * hears of an end as soon as it is stored, without the Redis round trips of the queue's event
 * stream, which still carries the ends of work done in other processes. Only ids travel: the store
 * stays the truth, and a waiter asks it again on each.
 */
export type EndKind = 'task' | 'validation';

const bus = new EventEmitter();
// One listener per API instance in this process (tests start several), not per waiting request.
bus.setMaxListeners(0);

export function announceEnd(kind: EndKind, id: string): void {
  bus.emit(kind, id);
}

/** Calls `listener` with the id of each end of `kind`; returns the unsubscribe. */
export function onEnd(kind: EndKind, listener: (id: string) => void): () => void {
  bus.on(kind, listener);
  return () => bus.off(kind, listener);
}
