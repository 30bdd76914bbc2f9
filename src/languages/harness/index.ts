import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import type { Limits, RunSpec, SandboxSpec } from '../../sandbox/types.js';
import { buildRun, languageSandbox, type Language, type LanguageId } from '../index.js';

/**
 * The task-file harness (SPEC §6): the entry file of a validation or task run. It imports the user's
 * task file next to it, checks `handler`, calls it and reports on a channel the task cannot write
 * to (see the comments at the top of python_harness.py and node_harness.mjs).
 */

export type HarnessMode = 'validate' | 'run';

/** Starts the harness's one line on the real stdout; the run's nonce follows it. */
export const HARNESS_MARKER = '\0WARDEN_RESULT ';
/** The marker without its NUL: a task that prints this is trying to imitate a verdict. */
export const MARKER_WORD = 'WARDEN_RESULT';

/** The entry file each language's runs ship (Python's harness itself is loaded at start, see harnessSandbox). */
const HARNESS_FILES: Record<LanguageId, string> = {
  python: 'python_entry.py',
  javascript: 'node_harness.mjs',
  typescript: 'node_harness.mjs',
};

const sources = new Map<string, string>();

function harnessSource(fileName: string): string {
  let text = sources.get(fileName);
  if (text === undefined) {
    text = readFileSync(fileURLToPath(new URL(`./${fileName}`, import.meta.url)), 'utf8');
    sources.set(fileName, text);
  }
  return text;
}

export function harnessFor(lang: Language): { fileName: string; source: string } {
  const fileName = HARNESS_FILES[lang.id];
  return { fileName, source: harnessSource(fileName) };
}

/**
 * The sandbox harness runs start from: the language's own, except that Python loads the harness
 * (python_harness.py, with asyncio and the rest it imports) before its bootstrap waits for the
 * program (python_preload.py), so a pre-started one has it ready when a run arrives. Still one
 * sandbox per run; what it holds before the run is Warden's harness and the standard library only.
 * Node's harness needs only built-in modules, already loaded at start: it is shipped with each run.
 */
export function harnessSandbox(lang: Language): SandboxSpec {
  const spec = languageSandbox(lang);
  if (lang.id !== 'python') return spec;
  const bootstrap = spec.argv.at(-1)!;
  // A JSON string is a valid Python string literal.
  const preload = `_WARDEN_HARNESS = ${JSON.stringify(harnessSource('python_harness.py'))}\n${harnessSource('python_preload.py')}`;
  return { ...spec, argv: [...spec.argv.slice(0, -1), `${preload}\n${bootstrap}`], label: 'python-task' };
}

/** A run of the harness over `code`. Throws CompileError (TypeScript) like buildRun. */
export async function buildHarnessRun(
  lang: Language,
  code: string,
  options: { mode: HarnessMode; payloads: unknown[]; limits?: Partial<Limits> },
): Promise<{ spec: RunSpec; nonce: string }> {
  const nonce = randomBytes(16).toString('hex');
  const harness = harnessFor(lang);
  const stdin = JSON.stringify({
    mode: options.mode,
    payloads: options.payloads,
    nonce,
    module: lang.compiledFileName ?? lang.fileName,
  });
  const spec = await buildRun(lang, code, {
    stdin,
    limits: options.limits,
    extraFiles: { [harness.fileName]: harness.source },
    main: harness.fileName,
  });
  const { argv, label } = harnessSandbox(lang);
  return { spec: { ...spec, argv, label }, nonce };
}

const problemSchema = z.object({
  /** no_handler, not_callable, not_async, signature, syntax, import, exit, never_settled, raised, not_json, memory. */
  kind: z.string(),
  message: z.string(),
  type: z.string().optional(),
  /** Line in the user's task file (TypeScript: in the .ts source). */
  line: z.number().int().optional(),
  traceback: z.string().optional(),
  /** The payload being handled when the problem arose, when it arose in a handler call. */
  index: z.number().int().min(0).optional(),
});
export type HarnessProblem = z.infer<typeof problemSchema>;

const probeSchema = z.object({
  index: z.number().int().min(0),
  ok: z.boolean(),
  error: problemSchema.nullable().optional(),
  /** The result's JSON, cut at 200 characters. */
  preview: z.string().optional(),
});
export type HarnessProbe = z.infer<typeof probeSchema>;

const verdictSchema = z.object({
  ok: z.boolean(),
  /** The task file could not be imported, or its handler has the wrong shape. */
  problem: problemSchema.optional(),
  /** Run mode: what the handler raised. */
  error: problemSchema.optional(),
  /** Validate mode: one entry per payload tried (fewer when a fatal failure stopped the probing). */
  results: z.array(probeSchema),
  /** Errors that escaped the handler (JavaScript: uncaught exceptions, unhandled rejections). */
  background: z.array(problemSchema).optional(),
  /** Worth telling the user, not worth rejecting for. */
  notes: z.array(z.string()).optional(),
  result: z.unknown().optional(),
});

export type HarnessVerdict = z.infer<typeof verdictSchema> & { hasResult: boolean };

export type VerdictReading =
  | { kind: 'verdict'; verdict: HarnessVerdict }
  /** Nothing on the channel: the process ended before the harness could report. */
  | { kind: 'missing' }
  /** Something other than exactly one well-formed line carrying this run's nonce. */
  | { kind: 'tampered'; detail: string };

/** The harness's verdict from a run's stdout, accepted only as exactly one line with the run's nonce. */
export function readVerdict(stdout: string, nonce: string): VerdictReading {
  if (stdout.length === 0) return { kind: 'missing' };
  const head = `${HARNESS_MARKER}${nonce} `;
  if (!stdout.startsWith(head))
    return { kind: 'tampered', detail: 'the verdict channel holds a line Warden did not write' };
  if (!stdout.endsWith('\n') || stdout.indexOf('\n') !== stdout.length - 1) {
    return { kind: 'tampered', detail: 'the verdict channel holds more than one line' };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(stdout.slice(head.length, -1));
  } catch {
    return { kind: 'tampered', detail: 'the verdict is not valid JSON' };
  }
  const parsed = verdictSchema.safeParse(raw);
  if (!parsed.success) return { kind: 'tampered', detail: 'the verdict does not have the expected shape' };
  const hasResult = typeof raw === 'object' && raw !== null && Object.hasOwn(raw, 'result');
  return { kind: 'verdict', verdict: { ...parsed.data, hasResult } };
}
