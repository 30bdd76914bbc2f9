import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Diagnostic } from './diagnostics.js';

/**
 * The type check (typecheck.ts) off the event loop, in a child process of its own, started on the
 * first check and kept for the next (the compiler and the parsed lib stay warm in it). A process, not
 * a thread: the compiler's ≈ 200 MB would otherwise be part of the service's address space, and every
 * sandbox the service spawns forks that space (≈ 5 ms of CPU per 100 MB here). Checks are served one
 * at a time, in order. The process is unref'd while idle, so it never keeps the service up, and started
 * again after it dies. A check that does not answer in time, or that the process fails, counts as "no
 * type problems" (the run goes on; esbuild has already transpiled the code) and is reported to
 * `onGiveUp`: a type check is a courtesy to the user, never a reason to hold a run.
 */

/** Long enough for a cold first check (≈ 1 s, a few on a busy machine), short beside a run's budget. */
export const TYPECHECK_TIMEOUT_MS = 10_000;

/** Caps the checker's heap: a pathological file kills the checker, not the service (it restarts). */
const MAX_HEAP_MB = 512;

const ENTRY = fileURLToPath(new URL('./typecheck-process.mjs', import.meta.url));

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

let checker: ChildProcess | null = null;
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
  if (pending.size === 0) idle(checker);
  if (outcome instanceof Error) {
    p.giveUp(outcome);
    p.resolve([]);
  } else {
    p.resolve(outcome);
  }
}

/** While no check waits, the checker (process and channel) does not keep the service up. */
function idle(c: ChildProcess | null): void {
  c?.unref();
  c?.channel?.unref();
}

/** Forgets `c` (the next check starts a new checker) and gives up every check it still held. */
function lose(c: ChildProcess, err: Error): void {
  if (checker !== c) return;
  checker = null;
  for (const id of [...pending.keys()]) settle(id, err);
  c.kill('SIGKILL');
}

function start(): ChildProcess {
  const c = fork(ENTRY, [], {
    execArgv: [...process.execArgv, `--max-old-space-size=${MAX_HEAP_MB}`],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  idle(c);
  c.on('message', (reply: Reply) =>
    settle(reply.id, 'error' in reply ? new Error(reply.error) : reply.diagnostics),
  );
  c.on('error', (err) => lose(c, err));
  c.on('exit', (code, signal) =>
    lose(c, new Error(`the type checker exited with ${signal ?? `code ${code}`}`)),
  );
  return c;
}

/** The type errors of `code` (see typeCheck), computed by the type checker's own process. */
export function typeCheckApart(code: string, options: TypeCheckOptions = {}): Promise<Diagnostic[]> {
  const { timeoutMs = TYPECHECK_TIMEOUT_MS, onGiveUp = warn } = options;
  const c = (checker ??= start());
  const id = nextId++;
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      // The checker may be stuck on this very file: replace it rather than queue more behind it.
      lose(c, new Error(`the type check took longer than ${timeoutMs} ms`));
    }, timeoutMs);
    pending.set(id, { resolve, giveUp: onGiveUp, timer });
    c.ref();
    c.channel?.ref();
    c.send({ id, code });
  });
}

/** The checker's pid while it runs (tests). */
export function typeCheckerPid(): number | undefined {
  return checker?.pid;
}

/** Ends the type checker, if any (its checks in flight are given up); the next check starts one. */
export async function stopTypeChecker(): Promise<void> {
  const c = checker;
  if (!c) return;
  const gone = new Promise((resolve) => c.once('exit', resolve));
  c.ref(); // its exit must be heard
  lose(c, new Error('the type checker was stopped'));
  if (c.exitCode === null && c.signalCode === null) await gone;
}
