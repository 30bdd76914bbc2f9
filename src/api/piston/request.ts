import type { WardenConfig } from '../../config/schema.js';
import { isBoxPath } from '../../languages/index.js';
import type { ExecutionRequest, RequestLimits } from '../../runner/index.js';
import type { PistonExecuteRequest } from '../schemas/piston.js';
import type { PistonRuntime } from './runtimes.js';

/** A Piston request Warden cannot take: 400 `{ message }`, the message naming the field as Piston does. */
export class PistonRequestError extends Error {}

const MiB = 1024 * 1024;
const ENCODINGS = ['utf8', 'base64', 'hex'] as const;

/**
 * Files a runtime loads as compiled or native code without a source to analyse (`import helper`
 * finds helper.pyc or helper.so; `require('./x.node')` loads an addon). Refused while static
 * analysis is on: it could not see what they do.
 */
const UNANALYSABLE: Record<string, string[]> = {
  python: ['.pyc', '.pyo', '.pyd', '.so'],
  javascript: ['.node'],
  typescript: ['.node'],
};

/** A file as Piston reads one: a default name, an unknown encoding read as utf8. */
function normalise(file: PistonExecuteRequest['files'][number], i: number) {
  const encoding = (ENCODINGS as readonly string[]).includes(file.encoding ?? '')
    ? (file.encoding as (typeof ENCODINGS)[number])
    : 'utf8';
  return { name: file.name || `file${i}.code`, content: file.content, encoding };
}

/** Piston's limits (ms, bytes; 0 or null: the default) as /execute's (s, MiB), clamped to Warden's maxima. */
function limits(body: PistonExecuteRequest, config: WardenConfig): RequestLimits {
  const { maxLimits } = config.sandbox;
  const fields = [
    'compile_timeout',
    'run_timeout',
    'compile_cpu_time',
    'run_cpu_time',
    'compile_memory_limit',
    'run_memory_limit',
  ] as const;
  for (const field of fields) {
    const value = body[field];
    // Piston: a negative memory limit is "no limit"; a negative time is a mistake.
    if (value && value < 0 && !field.endsWith('memory_limit'))
      throw new PistonRequestError(`${field} must be non-negative`);
  }
  const out: RequestLimits = { network_access: false };
  if (body.run_timeout) out.timeout = Math.max(1, Math.min(body.run_timeout, maxLimits.wallTimeMs)) / 1000;
  const memory = body.run_memory_limit;
  if (memory) {
    const bytes = memory < 0 ? maxLimits.memoryBytes : Math.min(memory, maxLimits.memoryBytes);
    out.memory_limit = Math.max(16 * MiB, bytes) / MiB;
  }
  return out;
}

/**
 * A Piston request as the execution Warden queues: the first utf8 file is the entry (stored under
 * the language's own name, e.g. main.py), the others are written beside it, stdin gets Piston's
 * trailing newline, and the run answers as a process (`options.detail`).
 */
export function pistonExecution(
  body: PistonExecuteRequest,
  runtime: PistonRuntime,
  config: WardenConfig,
): ExecutionRequest {
  const files = body.files.map(normalise);
  const entry = files.findIndex((f) => f.encoding === 'utf8');
  if (entry < 0) throw new PistonRequestError('files must include at least one utf8 encoded file');
  const analysis = config.piston.analysis;
  const maxChars = config.analysis.maxCodeChars;
  const lang = runtime.lang;
  const reserved = new Set([lang.fileName, lang.compiledFileName ?? lang.fileName]);
  const others = new Map<string, string>();
  for (const [i, file] of files.entries()) {
    if (i === entry) {
      if (file.content.length > maxChars)
        throw new PistonRequestError(
          `files[${i}].content is longer than the limit of ${maxChars} characters`,
        );
      continue;
    }
    if (!isBoxPath(file.name))
      throw new PistonRequestError(
        `files[${i}].name must be a relative path of plain names (none empty or starting with ".")`,
      );
    if (reserved.has(file.name.split('/')[0]!))
      throw new PistonRequestError(
        `files[${i}].name ${JSON.stringify(file.name)} is the name Warden gives the entry file (files[${entry}]); rename it`,
      );
    if (others.has(file.name))
      throw new PistonRequestError(`files[${i}].name ${JSON.stringify(file.name)} appears twice`);
    const bytes = Buffer.from(file.content, file.encoding);
    if (analysis) {
      const ext = UNANALYSABLE[lang.id]?.find((e) => file.name.toLowerCase().endsWith(e));
      if (ext)
        throw new PistonRequestError(
          `files[${i}].name: compiled or native code (${ext}) is not accepted while static analysis is on`,
        );
      if (bytes.toString('utf8').length > maxChars)
        throw new PistonRequestError(
          `files[${i}].content is longer than the limit of ${maxChars} characters that static analysis reads`,
        );
    }
    others.set(file.name, bytes.toString('base64'));
  }
  // A name cannot be a file and a directory at once (`lib` and `lib/util.js`).
  const names = [...others.keys()];
  const clash = names.find((name) => names.some((other) => other.startsWith(`${name}/`)));
  if (clash !== undefined)
    throw new PistonRequestError(`files: ${JSON.stringify(clash)} is both a file and a directory`);
  const args = (body.args ?? []).map(String);
  const bad = args.findIndex((a) => a.includes('\0'));
  if (bad >= 0) throw new PistonRequestError(`args[${bad}] cannot hold a NUL byte`);
  const stdin = body.stdin ?? '';
  return {
    code: files[entry]!.content,
    language: lang.id,
    stdin: stdin.endsWith('\n') ? stdin : `${stdin}\n`,
    limits: limits(body, config),
    options: {
      args,
      files: Object.fromEntries(others),
      analysis,
      detail: true,
      // Piston's separate CPU limit; without it the CPU limit follows run_timeout, as on /execute.
      ...(body.run_cpu_time && {
        cpuTimeMs: Math.max(1, Math.min(body.run_cpu_time, config.sandbox.maxLimits.cpuTimeMs)),
      }),
    },
  };
}
