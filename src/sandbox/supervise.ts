import type { ChildProcess } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { constants as osConstants } from 'node:os';
import type { BackendName, Isolation, Limits, RunInput, RunResult, Verdict, Violation } from './types.js';

/**
 * What a backend hands the supervisor: a spawned child whose stdio is [stdin, stdout, stderr,
 * payload(fd 3)], plus the hooks that read usage and end the whole process tree.
 */
export interface Supervised {
  child: ChildProcess;
  backend: BackendName;
  isolation: Isolation;
  pooled: boolean;
  warnings: string[];
  /** Cumulative CPU ms of the run's processes (cgroup, or sampled from /proc). */
  cpuMs(): number;
  peakMemoryBytes(): number;
  oomKilled(): boolean;
  /** Kill every process of the run now (timeout, output flood). */
  killTree(): void;
  /** Map how the child ended to the user program's exit code / signal, or a setup failure. */
  decodeExit(code: number | null, signal: NodeJS.Signals | null): DecodedExit;
  /** Release everything the sandbox holds; called exactly once after the child is gone. */
  teardown(): Promise<void>;
  /** Runtime violations the backend can see after the end (e.g. the syscall seccomp killed). */
  violations?(decoded: DecodedExit): Promise<Violation[]>;
}

export type DecodedExit =
  | { kind: 'exited'; exitCode: number | null; signal: string | null }
  | { kind: 'setup_failed'; error: string };

const SIGNAL_NAMES = new Map<number, string>(
  Object.entries(osConstants.signals).map(([name, num]) => [num as number, name]),
);

export function signalName(num: number): string {
  return SIGNAL_NAMES.get(num) ?? `SIG${num}`;
}

/** Collects a stream up to a cap, remembering whether more was produced. */
class CappedBuffer {
  private chunks: Buffer[] = [];
  private size = 0;
  truncated = false;

  constructor(private readonly cap: number) {}

  /** Returns false once the cap is passed. */
  push(chunk: Buffer): boolean {
    const room = this.cap - this.size;
    if (chunk.length > room) {
      if (room > 0) this.chunks.push(chunk.subarray(0, room));
      this.size = this.cap;
      this.truncated = true;
      return false;
    }
    this.chunks.push(chunk);
    this.size += chunk.length;
    return true;
  }

  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

function writeAndClose(stream: Writable | null | undefined, data: string | Uint8Array | undefined): void {
  if (!stream) return;
  // The program may exit without reading its input: EPIPE is its business, not an error of ours.
  stream.on('error', () => {});
  if (data !== undefined && data.length > 0) stream.end(data);
  else stream.end();
}

const CPU_POLL_MS = 20;

const pendingTeardowns = new Set<Promise<void>>();

function track(teardown: Promise<void>): void {
  const p = teardown.catch(() => {}).finally(() => pendingTeardowns.delete(p));
  pendingTeardowns.add(p);
}

/** Resolves when every finished run's sandbox is completely gone (cgroups removed, uid released). */
export async function settleTeardowns(): Promise<void> {
  while (pendingTeardowns.size > 0) await Promise.all([...pendingTeardowns]);
}

/**
 * Runs a started sandbox to its end under the run's limits and reports the verdict. The wall clock
 * starts here, not at sandbox start-up, so a pre-started sandbox's wait is not charged to the run.
 */
export async function superviseRun(s: Supervised, input: RunInput, limits: Limits): Promise<RunResult> {
  const { child } = s;
  const started = performance.now();
  const cpuAtStart = s.cpuMs();
  const stdout = new CappedBuffer(limits.maxOutputBytes);
  const stderr = new CappedBuffer(limits.maxOutputBytes);
  let timedOut = false;
  let outputExceeded = false;
  let killed = false;
  const kill = () => {
    if (killed) return;
    killed = true;
    s.killTree();
  };

  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve({ code: child.exitCode, signal: child.signalCode });
    } else child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const drained = Promise.all(
    (
      [
        ['stdout', child.stdout, stdout],
        ['stderr', child.stderr, stderr],
      ] as const
    ).map(
      ([name, stream, buffer]) =>
        new Promise<void>((resolve) => {
          const readable = stream as Readable | null;
          const capped = buffer as CappedBuffer;
          if (!readable) return resolve();
          readable.on('data', (chunk: Buffer) => {
            input.onOutput?.(name, chunk);
            if (!capped.push(chunk) && !outputExceeded) {
              outputExceeded = true;
              kill();
            }
          });
          readable.once('close', resolve);
          readable.once('error', () => resolve());
        }),
    ),
  );

  const wallTimer = setTimeout(() => {
    timedOut = true;
    kill();
  }, limits.wallTimeMs);
  let cpuSeen = 0;
  const cpuTimer = setInterval(() => {
    // Max: sampled accounting (no cgroups) loses processes once they exit.
    cpuSeen = Math.max(cpuSeen, s.cpuMs() - cpuAtStart);
    s.peakMemoryBytes();
    if (cpuSeen > limits.cpuTimeMs) {
      timedOut = true;
      kill();
    }
  }, CPU_POLL_MS);

  const abort = () => kill();
  if (input.signal?.aborted) kill();
  else input.signal?.addEventListener('abort', abort, { once: true });

  const stdio = child.stdio as unknown as (Writable | Readable | null)[];
  writeAndClose(stdio[3] as Writable | null, input.payload);
  writeAndClose(child.stdin, input.stdin);

  const { code, signal } = await exited;
  const wallMs = performance.now() - started;
  clearTimeout(wallTimer);
  clearInterval(cpuTimer);
  input.signal?.removeEventListener('abort', abort);
  // Whatever the program left behind (daemons holding the pipes) goes now.
  kill();
  let drainTimer: NodeJS.Timeout | undefined;
  await Promise.race([drained, new Promise((r) => (drainTimer = setTimeout(r, 2000)))]);
  clearTimeout(drainTimer);
  child.stdout?.destroy();
  child.stderr?.destroy();

  const cpuMs = Math.max(cpuSeen, s.cpuMs() - cpuAtStart);
  const peakMemoryBytes = s.peakMemoryBytes();
  const oom = s.oomKilled();
  const decoded = s.decodeExit(code, signal);
  const violations = s.violations ? await s.violations(decoded) : [];
  // Removing cgroups waits for the kernel to reap the last processes: not the caller's time.
  track(s.teardown());

  const base = {
    stdout: stdout.text(),
    stderr: stderr.text(),
    truncated: { stdout: stdout.truncated, stderr: stderr.truncated },
    usage: { wallMs: Math.round(wallMs), cpuMs: Math.round(cpuMs), peakMemoryBytes },
    violations,
    backend: s.backend,
    isolation: s.isolation,
    pooled: s.pooled,
    warnings: s.warnings,
  };
  if (decoded.kind === 'setup_failed') {
    return { ...base, status: 'error', exitCode: null, signal: null, error: decoded.error };
  }
  let status: Verdict;
  if (oom) status = 'memory_limit_exceeded';
  else if (outputExceeded) status = 'output_limit_exceeded';
  else if (timedOut || decoded.signal === 'SIGXCPU') status = 'timeout';
  else if (violations.length > 0) status = 'security_violation';
  else status = decoded.exitCode === 0 && decoded.signal === null ? 'success' : 'failed';
  return { ...base, status, exitCode: decoded.exitCode, signal: decoded.signal };
}
