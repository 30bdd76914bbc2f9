import { Worker } from 'node:worker_threads';
import type { Diagnostic } from './diagnostics.js';

/**
 * The type check (typecheck.ts) off the event loop: one worker thread per process, started on the
 * first check and kept for the next (the compiler and the parsed lib stay warm in it). Checks are
 * served one at a time, in order. The thread is unref'd while idle, so it never keeps a process up,
 * and started again after it dies. A check that does not answer in time, or that the thread fails,
 * counts as "no type problems" (the run goes on; esbuild has already transpiled the code) and is
 * reported to `onGiveUp`: a type check is a courtesy to the user, never a reason to hold a run.
 */

/** Long enough for a cold first check (≈ 1 s, a few on a busy machine), short beside a run's budget. */
export const TYPECHECK_TIMEOUT_MS = 10_000;

/** Caps the thread's heap: a pathological file kills the thread, not the process (it restarts). */
const MAX_HEAP_MB = 512;

const ENTRY = new URL('./typecheck-worker-thread.mjs', import.meta.url);

export interface TypeCheckOptions {
  timeoutMs?: number;
  /** Told why a check was given up; a process warning when absent. */
  onGiveUp?: (err: Error) => void;
}

interface Pending {
  resolve: (found: Diagnostic[]) => void;
  giveUp: (err: Error) => void;
  timer: NodeJS.Timeout;
}

type Reply = { id: number; diagnostics: Diagnostic[] } | { id: number; error: string };

let thread: Worker | null = null;
let nextId = 0;
const pending = new Map<number, Pending>();

function warn(err: Error): void {
  process.emitWarning(`type check given up, the code runs unchecked: ${err.message}`, 'WardenTypeCheck');
}

function settle(id: number, outcome: Diagnostic[] | Error): void {
  const p = pending.get(id);
  if (!p) return;
  pending.delete(id);
  clearTimeout(p.timer);
  if (pending.size === 0) thread?.unref();
  if (outcome instanceof Error) {
    p.giveUp(outcome);
    p.resolve([]);
  } else {
    p.resolve(outcome);
  }
}

/** Forgets `w` (the next check starts a new thread) and gives up every check it still held. */
function lose(w: Worker, err: Error): void {
  if (thread !== w) return;
  thread = null;
  for (const id of [...pending.keys()]) settle(id, err);
  void w.terminate();
}

function start(): Worker {
  const w = new Worker(ENTRY, { resourceLimits: { maxOldGenerationSizeMb: MAX_HEAP_MB } });
  w.unref();
  w.on('message', (reply: Reply) =>
    settle(reply.id, 'error' in reply ? new Error(reply.error) : reply.diagnostics),
  );
  w.on('error', (err) => lose(w, err));
  w.on('exit', (code) => lose(w, new Error(`the type-check thread exited with code ${code}`)));
  return w;
}

/** The type errors of `code` (see typeCheck), computed on the type-check thread. */
export function typeCheckOffThread(code: string, options: TypeCheckOptions = {}): Promise<Diagnostic[]> {
  const { timeoutMs = TYPECHECK_TIMEOUT_MS, onGiveUp = warn } = options;
  const w = (thread ??= start());
  const id = nextId++;
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      // The thread may be stuck on this very file: replace it rather than queue more behind it.
      lose(w, new Error(`the type check took longer than ${timeoutMs} ms`));
    }, timeoutMs);
    pending.set(id, { resolve, giveUp: onGiveUp, timer });
    w.ref();
    w.postMessage({ id, code });
  });
}

/** Ends the type-check thread, if any (its checks in flight are given up); the next check starts one. */
export async function stopTypeCheckThread(): Promise<void> {
  const w = thread;
  if (!w) return;
  lose(w, new Error('the type-check thread was stopped'));
  await w.terminate();
}
