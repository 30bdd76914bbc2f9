import { fstatSync, readFileSync } from 'node:fs';
import { CodeTooLargeError } from '../analysis/index.js';
import { createEngine } from '../sandbox/engine.js';
import type { BackendName, Limits } from '../sandbox/types.js';
import { executeCode } from '../runner/index.js';
import { EXIT, UsageError, positive, readConfig, readSource } from './common.js';

interface RunOptions {
  config?: string;
  lang?: string;
  stdin?: string;
  timeout?: number;
  memory?: number;
  cpus?: number;
  backend?: BackendName;
  analysis: boolean;
  json?: boolean;
}

const MiB = 1024 * 1024;

/**
 * What was piped or redirected into `warden run` (`echo world | warden run hello.py`, `< in.txt`),
 * for the program; read to its end before the run. Nothing from a terminal (it would wait for typing)
 * or from a device such as /dev/null.
 */
function pipedStdin(): string | undefined {
  if (process.stdin.isTTY) return undefined;
  let stat;
  try {
    stat = fstatSync(0);
  } catch {
    return undefined; // no descriptor 0 at all
  }
  if (!stat.isFIFO() && !stat.isFile() && !stat.isSocket()) return undefined;
  return readFileSync(0, 'utf8');
}

/** `warden run`: exit 0 whenever Warden itself worked, whatever the program's verdict. */
export async function runCommand(file: string, opts: RunOptions): Promise<number> {
  const config = readConfig(opts.config);
  const { code, language } = readSource(file, opts.lang);
  let stdin: string | undefined;
  if (opts.stdin) {
    try {
      stdin = readFileSync(opts.stdin, 'utf8');
    } catch {
      throw new UsageError(`cannot read ${opts.stdin}`);
    }
  } else {
    stdin = pipedStdin();
  }
  const limits: Partial<Limits> = {};
  const timeout = positive('--timeout', opts.timeout);
  if (timeout) {
    limits.wallTimeMs = Math.round(timeout * 1000);
    limits.cpuTimeMs = Math.round(timeout * 1000);
  }
  const memory = positive('--memory', opts.memory);
  if (memory) limits.memoryBytes = Math.round(memory * MiB);
  const cpus = positive('--cpus', opts.cpus);
  if (cpus) limits.cpus = cpus;

  // One run: a pool would only cost start-up time here.
  const engine = createEngine({ ...config.sandbox, pool: { ...config.sandbox.pool, size: 0 } });
  try {
    const outcome = await executeCode(
      { engine, policy: config.analysis, typecheck: config.languages.typescript.typecheck },
      { language, code, stdin, limits, backend: opts.backend, analysis: opts.analysis },
    );
    const { result } = outcome;
    if (opts.json) {
      process.stdout.write(
        `${JSON.stringify({ ...result, language: language.id, analysis: outcome.analysis })}\n`,
      );
    } else {
      process.stdout.write(result.stdout);
      process.stderr.write(result.stderr);
      for (const f of outcome.analysis?.findings ?? []) {
        process.stderr.write(`[warden] ${f.line}:${f.column} ${f.severity} ${f.rule}: ${f.message}\n`);
      }
      for (const v of result.violations) process.stderr.write(`[warden] violation ${v.rule}: ${v.message}\n`);
      for (const w of result.warnings) process.stderr.write(`[warden] warning: ${w}\n`);
      const u = result.usage;
      process.stderr.write(
        `[warden] ${result.status} exit=${result.exitCode ?? '-'} signal=${result.signal ?? '-'} ` +
          `wall=${u.wallMs}ms cpu=${u.cpuMs}ms memory=${(u.peakMemoryBytes / MiB).toFixed(1)}MiB ` +
          `backend=${result.backend} isolation=${result.isolation}${result.error ? ` error=${result.error}` : ''}\n`,
      );
    }
    return result.status === 'error' ? EXIT.internal : EXIT.ok;
  } catch (err) {
    if (err instanceof CodeTooLargeError) throw new UsageError(err.message);
    throw err;
  } finally {
    await engine.shutdown();
  }
}
