// Warden's task-file harness for JavaScript and TypeScript (compiled to main.js): the entry file of a
// validation or task run. It sits next to the user's task file inside the sandbox, imports it and
// calls its `export async function handler(payload)`.
//
// Input (stdin, one JSON document): {"mode": "validate" | "run", "payloads": [...], "nonce": "...",
//   "module": "main.js"}.
// Output: exactly one line on the real stdout: "\0WARDEN_RESULT <nonce> <json>\n", then exit 0.
//
// The verdict channel: Node cannot dup a descriptor, so fd 1 stays the private channel and every way
// the task has to print is pointed at stderr before it is imported: process.stdout (and so console,
// which resolves it lazily) becomes process.stderr. Only this module keeps a reference to the
// descriptor write; reaching fd 1 otherwise takes `fs`, which static analysis rejects. The nonce lives
// in this module's scope, which no other module can read, and the host accepts exactly one line.
//
// What this channel does not do: the checks below run in the same process as the task, so a task
// written to deceive (patching globals before its handler is checked) can lie about its own shape.
// The functions the verdict is written with are captured before the import. Such a lie buys
// nothing: every run of the file is sandboxed under the same limits, and each task run repeats these
// checks, so a file that lied fails its tasks.
import { Buffer } from 'node:buffer';
import fs from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { types } from 'node:util';

const MARKER = '\0WARDEN_RESULT ';
const PREVIEW_CHARS = 200;
const MAX_DEPTH = 512;
// Failures that reject whatever payload caused them: they are not "this payload lacks a key".
const FATAL = new Set(['memory', 'exit', 'not_json']);

const writeSync = fs.writeSync;
// process.exit looks process.reallyExit up at call time, and would run the task's 'exit' listeners
// after the verdict; the captured original ends the process right after the write.
const hardExit =
  typeof process.reallyExit === 'function' ? process.reallyExit.bind(process) : process.exit.bind(process);
const stringify = JSON.stringify;
const bufferFrom = Buffer.from;
const stderr = process.stderr;

const config = JSON.parse(fs.readFileSync(0, 'utf8') || '{}');
const nonce = String(config.nonce ?? '');
const mode = config.mode ?? 'validate';
const payloads = Array.isArray(config.payloads) ? config.payloads : [];
const here = path.dirname(fileURLToPath(import.meta.url));
const taskPath = path.join(here, path.basename(String(config.module ?? 'main.js')));

Object.defineProperty(process, 'stdout', { configurable: false, enumerable: true, get: () => stderr });

class ExitAttempt extends Error {}
// A task that ends the process would leave no verdict behind; it gets a clear reason instead.
process.exit = (code) => {
  throw new ExitAttempt(`process.exit(${code ?? ''}) was called`);
};
process.abort = () => {
  throw new ExitAttempt('process.abort() was called');
};

let emitted = false;
/** 'import' until the task file is loaded, then the index of the payload being handled. */
let phase = 'import';
const notes = [];
function emit(verdict, resultJson) {
  emitted = true;
  let body = stringify(verdict);
  // The result is already JSON text; splicing it in spares a second encoding of a large value.
  if (resultJson !== undefined) body = `${body.slice(0, -1)},"result":${resultJson}}`;
  const data = bufferFrom(`${MARKER}${nonce} ${body}\n`, 'utf8');
  for (let at = 0; at < data.length;) at += writeSync(1, data, at);
  hardExit(0);
}

const background = [];
process.on('uncaughtException', (err) => background.push(describe(err, 'raised')));
process.on('unhandledRejection', (err) => background.push(describe(err, 'raised')));
// The event loop ran dry while a handler was still pending: its promise can never settle.
process.on('beforeExit', () => {
  if (emitted) return;
  const problem =
    phase === 'import'
      ? { kind: 'never_settled', message: 'importing the task file awaits a promise that never settles' }
      : { kind: 'never_settled', message: "the handler's promise never settles", index: phase };
  emit({ ok: false, problem, results: [], notes });
});

function taskLine(stack) {
  // Stack frames name the task file (main.ts with source maps on); the first such frame is the
  // innermost one in the user's code.
  const base = path.basename(taskPath).replace(/\.[^.]*$/, '');
  const re = new RegExp(`/${base}\\.[cm]?[jt]s:(\\d+)(?::\\d+)?`);
  const m = typeof stack === 'string' ? re.exec(stack) : null;
  return m ? Number(m[1]) : undefined;
}

function safeString(value) {
  try {
    return String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

function describe(err, kind) {
  let type = typeof err;
  let message;
  let stack;
  try {
    if (err instanceof Error) {
      type = safeString(err.name);
      message = `${type}: ${safeString(err.message)}`;
      stack = err.stack;
    } else {
      message = `threw a non-Error value: ${safeString(err)}`;
    }
  } catch {
    message = 'threw a value that cannot be described';
  }
  if (err instanceof ExitAttempt) kind = 'exit';
  const info = { kind, type, message: message.slice(0, 1000) };
  const line = taskLine(stack);
  if (line !== undefined) info.line = line;
  return info;
}

/** Why `value` is not plain JSON data, or null when it is (JSON.stringify would silently drop or mangle these). */
function notJson(value, where, depth, seen) {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return null;
  if (typeof value === 'number')
    return Number.isFinite(value) ? null : `${where} is ${value}, which JSON cannot hold`;
  if (value === undefined) return `${where} is undefined`;
  if (typeof value === 'bigint') return `${where} is a BigInt`;
  if (typeof value === 'function') return `${where} is a function`;
  if (typeof value === 'symbol') return `${where} is a symbol`;
  if (depth > MAX_DEPTH) return `${where} is nested more than ${MAX_DEPTH} levels deep`;
  if (seen.has(value)) return `${where} refers back to itself (a cycle)`;
  seen.add(value);
  try {
    if (Array.isArray(value)) {
      if (Object.getPrototypeOf(value) !== Array.prototype) return `${where} is an array subclass`;
      for (let i = 0; i < value.length; i++) {
        if (!(i in value)) return `${where}[${i}] is a hole in a sparse array`;
        const why = notJson(value[i], `${where}[${i}]`, depth + 1, seen);
        if (why) return why;
      }
      return null;
    }
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      const name = safeString(proto?.constructor?.name ?? 'object');
      return `${where} is a ${name}, not a plain object`;
    }
    for (const key of Object.keys(value)) {
      const why = notJson(value[key], `${where}.${key}`, depth + 1, seen);
      if (why) return why;
    }
    return null;
  } finally {
    seen.delete(value);
  }
}

async function call(handler, payload) {
  let result;
  try {
    result = await handler(payload);
  } catch (err) {
    return { ok: false, error: describe(err, 'raised') };
  }
  try {
    const why = notJson(result, 'the result', 0, new Set());
    if (why) return { ok: false, error: { kind: 'not_json', type: 'TypeError', message: why } };
    return { ok: true, error: null, json: stringify(result) };
  } catch (err) {
    // A getter or proxy in the result threw while it was read.
    const info = describe(err, 'not_json');
    info.message = `the result could not be read: ${info.message}`;
    return { ok: false, error: info };
  }
}

function shapeProblem(handler) {
  if (typeof handler !== 'function') {
    return {
      kind: 'not_callable',
      message: `\`handler\` is ${handler === null ? 'null' : `a ${typeof handler}`}, not a function`,
    };
  }
  // util.types reads V8's own view of the function, which the task cannot fake.
  if (types.isAsyncFunction(handler) && types.isGeneratorFunction(handler)) {
    return { kind: 'not_async', message: 'it is an async generator (it yields); it must return its result' };
  }
  if (!types.isAsyncFunction(handler)) {
    return { kind: 'not_async', message: 'it is a plain function, not an `async function`' };
  }
  // Any function can be called with one argument, and TypeScript's optional parameters count in
  // `length` just like required ones: more than one parameter is worth a note, not a rejection.
  if (handler.length > 1) {
    notes.push(
      `\`handler\` declares ${handler.length} parameters but is called with one (payload); the others will be undefined`,
    );
  }
  return null;
}

async function load() {
  let mod;
  try {
    mod = await import(pathToFileURL(taskPath).href);
  } catch (err) {
    const kind = err instanceof SyntaxError ? 'syntax' : 'import';
    const info = describe(err, kind);
    if (info.line === undefined && typeof err?.stack === 'string') {
      // ESM syntax errors carry the location only in the first line of the stack ("file:///box/main.js:3").
      const line = taskLine(err.stack.split('\n')[0]);
      if (line !== undefined) info.line = line;
    }
    return { problem: info };
  }
  if (!('handler' in mod)) {
    return { problem: { kind: 'no_handler', message: 'the task file exports no `handler`' } };
  }
  return { handler: mod.handler };
}

const { handler, problem: loadProblem } = await load();
const problem = loadProblem ?? shapeProblem(handler);
if (problem) emit({ ok: false, problem, results: [], notes });

if (mode === 'run') {
  phase = 0;
  const outcome = await call(handler, payloads.length ? payloads[0] : {});
  if (outcome.ok) emit({ ok: true, results: [], background }, outcome.json);
  emit({ ok: false, error: outcome.error, results: [], background });
}

const results = [];
for (let index = 0; index < payloads.length; index++) {
  phase = index;
  const outcome = await call(handler, payloads[index]);
  if (outcome.json !== undefined) {
    const text = outcome.json;
    outcome.preview = text.length <= PREVIEW_CHARS ? text : `${text.slice(0, PREVIEW_CHARS - 1)}…`;
    delete outcome.json;
  }
  outcome.index = index;
  results.push(outcome);
  if (outcome.error && FATAL.has(outcome.error.kind)) break;
}
emit({ ok: results.every((r) => r.ok), results, background: background.slice(0, 10), notes });
