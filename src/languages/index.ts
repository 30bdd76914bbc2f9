import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { transform, version as esbuildVersion, type Message } from 'esbuild';
import type { AnalysisLanguage } from '../analysis/index.js';
import type { Limits, RunSpec, SandboxSpec } from '../sandbox/types.js';
import { CompileError, type Diagnostic } from './diagnostics.js';

export { CompileError, formatDiagnostic, type Diagnostic } from './diagnostics.js';

/** Runtimes as data (SPEC §3): what file the code goes in, how it starts, which rules check it. */

export const LANGUAGE_IDS = ['python', 'javascript', 'typescript'] as const;
export type LanguageId = (typeof LANGUAGE_IDS)[number];

export interface Language {
  id: LanguageId;
  name: string;
  /** Name the submitted code is stored under in the working dir. */
  fileName: string;
  extensions: string[];
  aliases: string[];
  /** Runtime binary on the host, bound read-only into the sandbox with the rest of /usr. */
  runtime: string;
  /** Starts the runtime with the bootstrap, which waits for the program on fd 3 (see bootstrap/). */
  argv: string[];
  /** The static rule set applied before any run. */
  analysis: AnalysisLanguage;
  /** Source → what the runtime executes (TypeScript is transpiled on the host, never executed there). */
  compile?: (code: string) => Promise<string>;
  /** File the compiled output is stored under, when it differs from fileName. */
  compiledFileName?: string;
}

const bootstrap = (name: string) =>
  readFileSync(fileURLToPath(new URL(`./bootstrap/${name}`, import.meta.url)), 'utf8');

const PYTHON = '/usr/bin/python3';
const NODE = '/usr/bin/node';
const nodeArgv = (extra: string[]) => [
  NODE,
  '--experimental-detect-module',
  '--disable-warning=ExperimentalWarning',
  // vm.SourceTextModule: the bootstrap parses an ES module entry before running it (load errors).
  '--experimental-vm-modules',
  ...extra,
  '-e',
  bootstrap('node.cjs'),
];

export const LANGUAGES: Record<LanguageId, Language> = {
  python: {
    id: 'python',
    name: 'Python 3',
    fileName: 'main.py',
    extensions: ['.py'],
    aliases: ['py', 'python3'],
    runtime: PYTHON,
    // -I: ignore PYTHON* variables and the user site; -S: the bootstrap does site's visible part
    // itself, cheaper; -u: output reaches the caller even on a kill.
    argv: [PYTHON, '-I', '-S', '-u', '-c', bootstrap('python.py')],
    analysis: 'python',
  },
  javascript: {
    id: 'javascript',
    name: 'JavaScript (Node.js)',
    fileName: 'main.js',
    extensions: ['.js', '.mjs', '.cjs'],
    aliases: ['js', 'node', 'nodejs'],
    runtime: NODE,
    argv: nodeArgv([]),
    analysis: 'javascript',
  },
  typescript: {
    id: 'typescript',
    name: 'TypeScript (esbuild → Node.js)',
    fileName: 'main.ts',
    extensions: ['.ts', '.mts', '.cts'],
    aliases: ['ts'],
    runtime: NODE,
    argv: nodeArgv(['--enable-source-maps']),
    analysis: 'typescript',
    compiledFileName: 'main.js',
    compile: async (code) => {
      // Inline source maps keep error lines pointing at the user's TypeScript.
      const out = await transform(code, {
        loader: 'ts',
        sourcemap: 'inline',
        sourcefile: 'main.ts',
        target: 'node20',
      });
      return out.code;
    },
  },
};

export function findLanguage(name: string): Language | undefined {
  const key = name.trim().toLowerCase();
  return Object.values(LANGUAGES).find((l) => l.id === key || l.aliases.includes(key));
}

export function languageForFile(path: string): Language | undefined {
  const dot = path.lastIndexOf('.');
  const ext = dot >= 0 ? path.slice(dot).toLowerCase() : '';
  return Object.values(LANGUAGES).find((l) => l.extensions.includes(ext));
}

const versions = new Map<LanguageId, string>();

/** Version of the runtime as the sandbox will run it (asked once, then cached). */
export function languageVersion(lang: Language): string {
  const cached = versions.get(lang.id);
  if (cached) return cached;
  const out = spawnSync(lang.runtime, ['--version'], { encoding: 'utf8', env: {} });
  const runtime = `${out.stdout}${out.stderr}`.trim().replace(/^Python /, '') || 'unknown';
  const version = lang.compile
    ? `node ${runtime.replace(/^v/, '')}, esbuild ${esbuildVersion}`
    : runtime.replace(/^v/, '');
  versions.set(lang.id, version);
  return version;
}

/** How many pre-started sandboxes a language keeps: its `sandbox.pool.perLanguage` entry, else `size`. */
export function poolSizeFor(
  pool: { size: number; perLanguage: Record<string, number> },
  lang: Language,
): number {
  return pool.perLanguage[lang.id] ?? pool.size;
}

/** The sandbox a language's runs start from; the same spec is what the pool keeps pre-started. */
export function languageSandbox(lang: Language, limits?: Partial<Limits>): SandboxSpec {
  return { argv: lang.argv, limits, label: lang.id };
}

/** esbuild's errors (columns 0-based there) as diagnostics; anything else is not a compile error. */
function transpileDiagnostics(err: unknown): Diagnostic[] | null {
  const errors = (err as { errors?: Message[] } | null)?.errors;
  if (!Array.isArray(errors) || errors.length === 0) return null;
  return errors.map((e) => ({
    line: e.location?.line ?? null,
    column: e.location ? e.location.column + 1 : null,
    message: e.text,
  }));
}

/** What the runtime executes for `code`; throws CompileError when it does not transpile. */
export async function compileSource(lang: Language, code: string): Promise<string> {
  if (!lang.compile) return code;
  try {
    return await lang.compile(code);
  } catch (err) {
    const diagnostics = transpileDiagnostics(err);
    if (!diagnostics) throw err;
    throw new CompileError(diagnostics);
  }
}

/**
 * A run of `code`: the program travels as the payload on fd 3, so a pre-started sandbox of the same
 * language can take it. `extraFiles` (e.g. a test harness, or a Piston request's other files) go next
 * to it, those in the language's own source form compiled like the entry (TypeScript → `.js`);
 * `main` picks the entry; `args` follow the entry on the program's command line.
 */
export async function buildRun(
  lang: Language,
  code: string,
  options: {
    stdin?: string;
    limits?: Partial<Limits>;
    extraFiles?: Record<string, string | Uint8Array>;
    main?: string;
    args?: string[];
  } = {},
): Promise<RunSpec> {
  const program = await compileSource(lang, code);
  const fileName = lang.compiledFileName ?? lang.fileName;
  // No prototype: a file may be called `__proto__` or `constructor`.
  const files: Record<string, string | Uint8Array> = Object.create(null);
  for (const [name, body] of Object.entries(options.extraFiles ?? {})) {
    const compiled = lang.compile ? compiledName(lang, name) : null;
    if (!compiled) files[name] = body;
    else files[compiled] = await compileSource(lang, Buffer.from(body).toString('utf8'));
  }
  files[fileName] = program;
  const payload = encodePayload(options.main ?? fileName, files, options.args);
  return { ...languageSandbox(lang, options.limits), stdin: options.stdin, payload };
}

/** `util.ts` → `util.js` for a language compiled on the host; null for a file it does not compile. */
function compiledName(lang: Language, name: string): string | null {
  const ext = lang.extensions.find((e) => name.toLowerCase().endsWith(e));
  return ext ? `${name.slice(0, -ext.length)}.js` : null;
}

/**
 * A file's place under the working dir: a relative path whose parts are plain names (none empty or
 * starting with "."), so it can neither leave the dir nor hide in it.
 */
export function isBoxPath(name: string): boolean {
  return !/[\0\n]/.test(name) && name.split('/').every((part) => part !== '' && !part.startsWith('.'));
}

/**
 * The bootstraps' payload: "nonce\0main\0argc\0argsize…\0name\0size…\n" then the arguments' and
 * the files' bytes (see bootstrap/). The nonce is the run's secret for the bootstrap's load-error
 * report (see load-error.ts). Sizes in the head keep any byte (a newline in an argument, a binary
 * file) out of its parsing.
 */
export function encodePayload(
  main: string,
  files: Record<string, string | Uint8Array>,
  args: string[] = [],
): Buffer {
  const bodies = Object.entries(files).map(([name, body]) => {
    if (!isBoxPath(name)) throw new Error(`invalid file name ${JSON.stringify(name)}`);
    return [name, typeof body === 'string' ? Buffer.from(body, 'utf8') : Buffer.from(body)] as const;
  });
  const argBodies = args.map((arg) => {
    if (arg.includes('\0')) throw new Error('a program argument cannot hold a NUL byte');
    return Buffer.from(arg, 'utf8');
  });
  const head = [
    randomBytes(16).toString('hex'),
    main,
    String(argBodies.length),
    ...argBodies.map((a) => String(a.length)),
    ...bodies.flatMap(([name, body]) => [name, String(body.length)]),
  ].join('\0');
  return Buffer.concat([Buffer.from(`${head}\n`, 'utf8'), ...argBodies, ...bodies.map(([, body]) => body)]);
}
