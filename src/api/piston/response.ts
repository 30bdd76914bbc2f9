import { constants } from 'node:os';
import type { ExecutionResponse, ProcessDetail } from '../../runner/index.js';
import type { PistonExecuteResponse, PistonStage } from '../schemas/piston.js';
import type { PistonRuntime } from './runtimes.js';

/**
 * Warden's answer as Piston's. Piston reports a stage as isolate does: `status` RE (non-zero exit),
 * SG (killed by a signal), TO (time limit, the process SIGKILLed), OL/EL (stdout/stderr past the
 * limit, SIGKILLed), XX (the sandbox's own failure), null on success, and `message` in isolate's
 * words. Warden's verdicts map onto them; its own reason follows in parentheses where isolate's words
 * alone would hide it (memory, a forbidden system call, static analysis).
 */

const signalNumber = (name: string | null): number | null =>
  name ? ((constants.signals as Record<string, number>)[name] ?? null) : null;

const ms = (seconds: number) => Math.round(seconds * 1000);

function stage(
  stdout: string,
  stderr: string,
  fields: Pick<PistonStage, 'code' | 'signal' | 'message' | 'status'>,
  usage: { cpu_time: number; wall_time: number; memory: number | null },
): PistonStage {
  return { stdout, stderr, output: stdout + stderr, ...fields, ...usage };
}

const joined = (lines: string[]) => (lines.length ? `${lines.join('\n')}\n` : '');

/** The run stage of a run that happened, from its process detail. */
function ranStage(res: ExecutionResponse, p: ProcessDetail): PistonStage {
  const usage = {
    cpu_time: ms(res.resource_usage.cpu_time),
    wall_time: ms(res.resource_usage.wall_time),
    memory: res.resource_usage.peak_memory,
  };
  const killed = { code: null, signal: 'SIGKILL' };
  const answer = (fields: Pick<PistonStage, 'code' | 'signal' | 'message' | 'status'>) =>
    stage(res.output, p.stderr, fields, usage);
  const signalled = (reason?: string) => {
    const n = signalNumber(p.signal);
    const message = `Caught fatal signal ${n ?? p.signal}${reason ? ` (${reason})` : ''}`;
    return answer({ code: null, signal: p.signal, message, status: 'SG' });
  };
  switch (res.status) {
    case 'success':
      return answer({ code: p.exit_code ?? 0, signal: null, message: null, status: null });
    case 'failed':
    case 'compile_error': // the runtime refused to load the code: exit status 1, its error on stderr
      if (p.signal) return signalled();
      return answer({
        code: p.exit_code,
        signal: null,
        message: `Exited with error status ${p.exit_code}`,
        status: 'RE',
      });
    case 'timeout':
      return answer({
        ...killed,
        message: p.time_limit === 'wall' ? 'Time limit exceeded (wall clock)' : 'Time limit exceeded',
        status: 'TO',
      });
    case 'memory_limit_exceeded':
      return answer({ ...killed, message: 'Caught fatal signal 9 (memory limit exceeded)', status: 'SG' });
    case 'output_limit_exceeded':
      return p.truncated.stderr && !p.truncated.stdout
        ? answer({ ...killed, message: 'stderr length exceeded', status: 'EL' })
        : answer({ ...killed, message: 'stdout length exceeded', status: 'OL' });
    case 'security_violation': {
      const what = res.security_violations.map((v) => v.message).join('; ');
      if (p.signal) return signalled(what || 'forbidden action');
      return answer({ code: p.exit_code, signal: null, message: what, status: 'SG' });
    }
    case 'error':
      return answer({ code: null, signal: null, message: p.notes.join('; '), status: 'XX' });
  }
}

/** A stage for an answer given before any run: rejected, does not compile, or Warden failed. */
function unranStage(res: ExecutionResponse): PistonStage {
  const usage = { cpu_time: 0, wall_time: 0, memory: null };
  if (res.status === 'error')
    return stage('', '', { code: null, signal: null, message: res.errors.join('; '), status: 'XX' }, usage);
  if (res.status === 'security_violation') {
    // Answered as Piston answers a failed run; the violations are the message (and the stderr).
    const violations = res.security_violations.map((v) =>
      v.line === null ? v.message : `line ${v.line}: ${v.message}`,
    );
    const message = `rejected by static analysis, not run: ${violations.join('; ')}`;
    return stage(
      '',
      joined([...res.errors, ...violations]),
      { code: 1, signal: null, message, status: 'RE' },
      usage,
    );
  }
  // compile_error (or code the analysis could not take): the compiler's way to fail.
  return stage(
    '',
    joined(res.errors),
    { code: 1, signal: null, message: 'Exited with error status 1', status: 'RE' },
    usage,
  );
}

const COMPILED: PistonStage = {
  stdout: '',
  stderr: '',
  output: '',
  code: 0,
  signal: null,
  message: null,
  status: null,
  cpu_time: 0,
  wall_time: 0,
  memory: null,
};

export function pistonResponse(runtime: PistonRuntime, res: ExecutionResponse): PistonExecuteResponse {
  const run = res.process ? ranStage(res, res.process) : unranStage(res);
  const head = { language: runtime.language, version: runtime.version };
  if (!runtime.lang.compile) return { ...head, run };
  // TypeScript has Piston's compile stage. Code that does not compile never runs: Piston then
  // answers the compile stage as the run too.
  if (res.status === 'compile_error' && !res.process) return { ...head, compile: run, run };
  return { ...head, compile: COMPILED, run };
}
