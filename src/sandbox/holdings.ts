/**
 * What a sandbox holds (uid lease, cgroup, temp dir, processes), each with how to give it back.
 * Released in the reverse order of taking, every release attempted even when an earlier one fails,
 * and only once however often release() is called: so a start that fails half-way and a run that
 * ends normally free their resources by the same code.
 */
export interface Holdings {
  take<T>(resource: T, release: (resource: T) => void | Promise<void>): T;
  release(): Promise<void>;
}

export function createHoldings(): Holdings {
  const undo: (() => void | Promise<void>)[] = [];
  let released: Promise<void> | undefined;
  return {
    take(resource, release) {
      if (released) throw new Error('sandbox already released');
      undo.push(() => release(resource));
      return resource;
    },
    release() {
      released ??= (async () => {
        const errors: unknown[] = [];
        for (const step of undo.reverse()) {
          try {
            await step();
          } catch (err) {
            errors.push(err);
          }
        }
        if (errors.length === 1) throw errors[0];
        if (errors.length > 1) throw new AggregateError(errors, 'releasing a sandbox failed');
      })();
      return released;
    },
  };
}

/** Gives back what a failed start took, then throws its error (with the release's, if that failed too). */
export async function releaseAndRethrow(held: Holdings, err: unknown): Promise<never> {
  try {
    await held.release();
  } catch (releaseErr) {
    throw new AggregateError([err, releaseErr], (err as Error).message);
  }
  throw err;
}

/** What holdProcess needs of a process: a ChildProcess, or one the spawner started. */
interface HeldProcess {
  readonly exitCode: number | null;
  readonly signalCode: NodeJS.Signals | null;
  kill(signal?: NodeJS.Signals): boolean;
  once(event: 'exit', listener: () => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
}

/**
 * Holds a sandbox's process: released by SIGKILL and waiting for its exit. Returns the promise of
 * that exit (a spawn error counts as one: there is nothing left to wait for).
 */
export function holdProcess(held: Holdings, child: HeldProcess): Promise<void> {
  child.on('error', () => {});
  const exited = new Promise<void>((resolve) => {
    // A spawner's process can have ended before its caller got it (its pid and exit came together).
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    child.once('exit', () => resolve());
    child.on('error', () => resolve());
  });
  held.take(child, async (c) => {
    c.kill('SIGKILL');
    await exited;
  });
  return exited;
}
