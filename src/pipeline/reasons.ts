import type { Finding } from '../analysis/index.js';
import type { Language } from '../languages/index.js';
import { MARKER_WORD, type HarnessProblem } from '../languages/harness/index.js';
import type { Limits, RunResult } from '../sandbox/types.js';

/** Turns what a sandboxed harness run produced into sentences a user can act on. */

/** The sandbox could not run the task at all: Warden's fault, so the caller retries, never rejects. */
export class SandboxFailureError extends Error {
  readonly result: RunResult;

  constructor(result: RunResult) {
    super(`the sandbox failed: ${result.error ?? 'unknown error'}`);
    this.name = 'SandboxFailureError';
    this.result = result;
  }
}

export function handlerShape(lang: Language): string {
  return lang.id === 'python' ? '`async def handler(payload)`' : '`export async function handler(payload)`';
}

const seconds = (ms: number) => `${+(ms / 1000).toFixed(2)} s`;

function size(bytes: number): string {
  if (bytes >= 1024 * 1024) return `${+(bytes / (1024 * 1024)).toFixed(1)} MiB`;
  if (bytes >= 1024) return `${+(bytes / 1024).toFixed(1)} KiB`;
  return `${bytes} bytes`;
}

function lastLine(text: string): string {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const line = lines.at(-1)?.trim() ?? '';
  return line.length > 300 ? `${line.slice(0, 299)}…` : line;
}

/**
 * Why a run that did not end normally ended, or null when it did (exit 0, within every limit).
 * Throws SandboxFailureError for `error`, which is never the user's doing.
 */
export function crashReason(result: RunResult, limits: Partial<Limits>): string | null {
  switch (result.status) {
    case 'success':
      return null;
    case 'error':
      throw new SandboxFailureError(result);
    case 'timeout': {
      const cpu = limits.cpuTimeMs;
      if (cpu !== undefined && (result.signal === 'SIGXCPU' || result.usage.cpuMs >= cpu)) {
        return `timed out: used its ${seconds(cpu)} of CPU time (an infinite loop?)`;
      }
      const wall = limits.wallTimeMs === undefined ? '' : ` ${seconds(limits.wallTimeMs)}`;
      return `timed out: still running after its${wall} wall-clock limit (an infinite loop, or a handler that never returns?)`;
    }
    case 'memory_limit_exceeded':
      return limits.memoryBytes === undefined
        ? 'exceeded its memory limit'
        : `exceeded its memory limit of ${size(limits.memoryBytes)}`;
    case 'output_limit_exceeded':
      return limits.maxOutputBytes === undefined
        ? 'printed more output than allowed (output flood)'
        : `printed more than ${size(limits.maxOutputBytes)} of output (output flood)`;
    case 'security_violation': {
      const found = result.violations.map((v) => `security violation: ${v.message}`);
      return found.length > 0
        ? found.join('; ')
        : 'security violation: the sandbox stopped a forbidden action';
    }
    case 'compile_error':
      return `the code does not compile: ${lastLine(result.stderr)}`;
    case 'failed': {
      const how = result.signal ? `was killed by ${result.signal}` : `exited with code ${result.exitCode}`;
      const last = lastLine(result.stderr);
      return `the process ${how} before the harness could report${last ? `: ${last}` : ''}`;
    }
  }
}

/** A task that prints Warden's marker is imitating a verdict; legitimate code never does. */
export function forgeryAttempt(userOutput: string): string | null {
  return userOutput.includes(MARKER_WORD)
    ? "the task printed Warden's verdict marker (an attempt to forge the validation result)"
    : null;
}

const at = (line: number | undefined) => (line === undefined ? '' : ` (line ${line})`);

/** The task file could not be imported, or its handler is not shaped as SPEC §6 asks. */
export function problemReason(problem: HarnessProblem, lang: Language): string {
  const shape = handlerShape(lang);
  switch (problem.kind) {
    case 'no_handler':
      return `no handler: the task file must define ${shape}`;
    case 'not_callable':
      return `handler is not a function: ${problem.message}; define ${shape}`;
    case 'not_async':
      return `handler is not async: ${problem.message}; define it as ${shape}`;
    case 'signature':
      return `wrong handler signature: ${problem.message}; define ${shape}`;
    case 'syntax':
      return `syntax error${at(problem.line)}: ${problem.message}`;
    case 'exit':
      return `the task file exits while being imported${at(problem.line)}: ${problem.message}`;
    case 'never_settled':
      return `${problem.message}: it awaits something that can never happen`;
    default:
      return `the task file failed while being imported${at(problem.line)}: ${problem.message}`;
  }
}

/** What a handler call went wrong with, phrased for `label` ("sample payload #1"). */
export function callReason(problem: HarnessProblem, label: string): string {
  switch (problem.kind) {
    case 'not_json':
      return `the handler's result for ${label} is not JSON-serialisable: ${problem.message}`;
    case 'memory':
      return `the handler ran out of memory on ${label}${at(problem.line)}: ${problem.message}`;
    case 'exit':
      return `the handler tried to end the process on ${label}${at(problem.line)}: ${problem.message}`;
    case 'never_settled':
      return `the handler's promise for ${label} never settles: it awaits something that can never happen`;
    default:
      return `the handler raised on ${label}${at(problem.line)}: ${problem.message}`;
  }
}

export function findingReason(finding: Finding): string {
  if (finding.rule === 'syntax_error') return `syntax error (line ${finding.line}): ${finding.message}`;
  return `rejected by static analysis (line ${finding.line}, ${finding.rule}): ${finding.message}`;
}
