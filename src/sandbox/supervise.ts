import type { Readable, Writable } from 'node:stream';
import { constants as osConstants } from 'node:os';
import type { Limits, RunInput, RunResult, Sandbox, SandboxSpec, Verdict } from './types.js';

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

/**
 * Runs a started sandbox to its end under the run's limits and collects the verdict; releasing the
 * sandbox is the caller's (engine.run's `finally`). The wall clock starts here, not at sandbox
 * start-up, so a pre-started sandbox's wait is not charged to the run.
 */
export async function superviseRun(s: Sandbox, input: RunInput, limits: Limits): Promise<RunResult> {
  const { child } = s;
  const started = performance.now();
  const cpuAtStart = s.cpuMs();
  const stdout = new CappedBuffer(limits.maxOutputBytes);
  const stderr = new CappedBuffer(limits.maxOutputBytes);
  let timedOut: 'wall' | 'cpu' | undefined;
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

  let cpuSeen = 0;
  const wallTimer = setTimeout(() => {
    timedOut ??= 'wall';
    kill();
  }, limits.wallTimeMs);
  const cpuTimer = setInterval(() => {
    // Max: sampled accounting (no cgroups) loses processes once they exit.
    cpuSeen = Math.max(cpuSeen, s.cpuMs() - cpuAtStart);
    s.peakMemoryBytes();
    if (cpuSeen > limits.cpuTimeMs) {
      timedOut ??= 'cpu';
      kill();
    }
  }, CPU_POLL_MS);
  const abort = () => kill();
  if (input.signal?.aborted) kill();
  else input.signal?.addEventListener('abort', abort, { once: true });
  let drainTimer: NodeJS.Timeout | undefined;
  let code: number | null;
  let signal: NodeJS.Signals | null;
  let wallMs: number;
  try {
    const stdio = child.stdio as unknown as (Writable | Readable | null)[];
    writeAndClose(stdio[3] as Writable | null, input.payload);
    writeAndClose(child.stdin, input.stdin);
    ({ code, signal } = await exited);
    wallMs = performance.now() - started;
    // Whatever the program left behind (daemons holding the pipes) goes now.
    kill();
    await Promise.race([drained, new Promise((r) => (drainTimer = setTimeout(r, 2000)))]);
  } finally {
    clearTimeout(wallTimer);
    clearInterval(cpuTimer);
    clearTimeout(drainTimer);
    input.signal?.removeEventListener('abort', abort);
    child.stdout?.destroy();
    child.stderr?.destroy();
  }

  const cpuMs = Math.max(cpuSeen, s.cpuMs() - cpuAtStart);
  const peakMemoryBytes = s.peakMemoryBytes();
  const oom = s.oomKilled();
  const decoded = s.decodeExit(code, signal);
  const violations = await s.violations(decoded);

  const base = {
    stdout: stdout.text(),
    stderr: stderr.text(),
    truncated: { stdout: stdout.truncated, stderr: stderr.truncated },
    usage: { wallMs: Math.round(wallMs), cpuMs: Math.round(cpuMs), peakMemoryBytes },
    violations,
    backend: s.backend,
    isolation: s.isolation,
    pooled: false,
    warnings: s.warnings,
  };
  if (decoded.kind === 'setup_failed') {
    return { ...base, status: 'error', exitCode: null, signal: null, error: decoded.error };
  }
  let status: Verdict;
  // A forbidden system call by any process outranks what it led to (a parent timing out, failing).
  if (violations.length > 0) status = 'security_violation';
  else if (oom) status = 'memory_limit_exceeded';
  else if (outputExceeded) status = 'output_limit_exceeded';
  else if (timedOut || decoded.signal === 'SIGXCPU') status = 'timeout';
  else status = decoded.exitCode === 0 && decoded.signal === null ? 'success' : 'failed';
  const result: RunResult = { ...base, status, exitCode: decoded.exitCode, signal: decoded.signal };
  // RLIMIT_CPU (no cgroups) ends a run with SIGXCPU before the poll sees it.
  if (status === 'timeout') result.timeLimit = timedOut ?? 'cpu';
  return result;
}

/**
 * A backend's probe: one cold sandbox running /bin/true, start to release. Either how long it took or
 * why it failed, worded for `warden doctor` and /health.
 */
export async function trialRun(
  start: (spec: SandboxSpec, limits: Limits) => Promise<Sandbox>,
  limits: Limits,
): Promise<{ ok: true; ms: number } | { ok: false; detail: string }> {
  let sandbox: Sandbox | undefined;
  const began = performance.now();
  try {
    sandbox = await start({ argv: ['/bin/true'] }, limits);
    const result = await superviseRun(sandbox, {}, limits);
    if (result.status !== 'success') {
      const exit = result.exitCode ?? result.signal;
      return {
        ok: false,
        detail: `test run ${result.status} (exit ${exit}) ${result.error ?? result.stderr}`.trim(),
      };
    }
  } catch (err) {
    return { ok: false, detail: (err as Error).message };
  } finally {
    await sandbox?.release().catch(() => {});
  }
  return { ok: true, ms: Math.round(performance.now() - began) };
}
