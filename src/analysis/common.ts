import type { Node } from 'web-tree-sitter';
import { ruleSeverity, type RuleId } from './rules.js';
import type { AnalysisPolicy, Finding } from './types.js';

/** What a language analyser receives: the source (node indices are UTF-16 offsets into it) and the policy. */
export interface AnalysisInput {
  src: string;
  policy: AnalysisPolicy;
  out: Collector;
}

export class Collector {
  readonly findings: Finding[] = [];
  private readonly seen = new Set<string>();

  add(rule: RuleId, node: Node, message: string): void {
    const line = node.startPosition.row + 1;
    const column = node.startPosition.column + 1;
    // The same construct is often reachable from two directions (an alias and its use, a member
    // and its call); one finding per rule and position is enough.
    const key = `${rule}:${line}:${column}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.findings.push({ rule, severity: ruleSeverity(rule), message, line, column });
  }
}

/** Inverts `{ value: [keys…] }` into a key → value map (rule tables are written grouped by rule). */
export function table<T extends string>(entries: Partial<Record<T, string[]>>): Map<string, T> {
  const map = new Map<string, T>();
  for (const [value, keys] of Object.entries(entries) as [T, string[]][]) {
    for (const key of keys) map.set(key, value);
  }
  return map;
}

export function textOf(src: string, node: Node): string {
  return src.slice(node.startIndex, node.endIndex);
}

/** Shortens a snippet for a message, keeping only its first line. */
export function snippet(text: string, max = 40): string {
  const nl = text.indexOf('\n');
  const line = nl >= 0 ? text.slice(0, nl) : text;
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

export function formatCount(n: number): string {
  if (!Number.isFinite(n)) return 'an unbounded number of';
  if (n >= 1e21) return n.toExponential(2);
  return Math.round(n).toLocaleString('en-US');
}

function hexValue(s: string): number | null {
  if (s.length === 0) return null;
  let v = 0;
  for (const ch of s) {
    const d = parseInt(ch, 16);
    if (Number.isNaN(d)) return null;
    v = v * 16 + d;
  }
  return v;
}

function isOctalDigit(ch: string | undefined): boolean {
  return ch !== undefined && ch >= '0' && ch <= '7';
}

/** What one escape sequence stands for, and how many characters after the backslash it spans. */
interface Escape {
  text: string;
  length: number;
}

const escapeTo = (text: string, length = 1): Escape => ({ text, length });

/**
 * Copies a string body, replacing each backslash escape by what `decodeOne(body, i)` makes of it
 * (i: the index after the backslash). Null when `decodeOne` cannot decode an escape.
 */
function decodeEscapes(body: string, decodeOne: (body: string, i: number) => Escape): string;
function decodeEscapes(body: string, decodeOne: (body: string, i: number) => Escape | null): string | null;
function decodeEscapes(body: string, decodeOne: (body: string, i: number) => Escape | null): string | null {
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const ch = body[i] as string;
    if (ch !== '\\') {
      out += ch;
      continue;
    }
    const decoded = decodeOne(body, i + 1);
    if (!decoded) return null;
    out += decoded.text;
    i += decoded.length;
  }
  return out;
}

const SINGLE_CHAR_ESCAPES = new Map<string, Escape>([
  ['b', escapeTo('\b')],
  ['f', escapeTo('\f')],
  ['n', escapeTo('\n')],
  ['r', escapeTo('\r')],
  ['t', escapeTo('\t')],
  ['v', escapeTo('\v')],
  // An escaped line break continues the string.
  ['\n', escapeTo('')],
]);

/** The escapes that JavaScript and Python read alike: \n and friends, line continuations, octal. */
function commonEscape(body: string, i: number): Escape | undefined {
  const c = body[i];
  if (c === undefined) return undefined;
  if (c === '\r') return escapeTo('', body[i + 1] === '\n' ? 2 : 1);
  if (isOctalDigit(c)) {
    let end = i + 1;
    while (end - i < 3 && isOctalDigit(body[end])) end++;
    return escapeTo(String.fromCharCode(parseInt(body.slice(i, end), 8)), end - i);
  }
  return SINGLE_CHAR_ESCAPES.get(c);
}

/** `\xHH`, `\uHHHH`, `\UHHHHHHHH`: `digits` hex digits after the letter at i; null if they are not. */
function hexEscape(body: string, i: number, digits: number): Escape | null {
  const v = hexValue(body.slice(i + 1, i + 1 + digits));
  return v === null || v > 0x10ffff ? null : escapeTo(String.fromCodePoint(v), 1 + digits);
}

function jsEscape(body: string, i: number): Escape {
  const c = body[i];
  switch (c) {
    case 'x':
      return hexEscape(body, i, 2) ?? escapeTo('x');
    case 'u': {
      if (body[i + 1] !== '{') return hexEscape(body, i, 4) ?? escapeTo('u');
      const end = body.indexOf('}', i + 2);
      const v = end > 0 ? hexValue(body.slice(i + 2, end)) : null;
      return v === null || v > 0x10ffff ? escapeTo('u') : escapeTo(String.fromCodePoint(v), end - i + 1);
    }
    case '\u2028':
    case '\u2029':
      return escapeTo('');
    default:
      // Any other escaped character stands for itself; a trailing backslash for nothing.
      return commonEscape(body, i) ?? escapeTo(c ?? '');
  }
}

function pyEscape(body: string, i: number, bytes: boolean): Escape | null {
  const c = body[i];
  switch (c) {
    case undefined:
      return escapeTo('\\');
    case '\\':
    case "'":
    case '"':
      return escapeTo(c);
    case 'a':
      return escapeTo('\x07');
    case 'x':
      return hexEscape(body, i, 2);
    case 'u':
    case 'U':
      if (bytes) return escapeTo(`\\${c}`);
      return hexEscape(body, i, c === 'u' ? 4 : 8);
    case 'N':
      return bytes ? escapeTo('\\N') : null;
    default:
      // Python keeps unknown escapes verbatim.
      return commonEscape(body, i) ?? escapeTo(`\\${c}`);
  }
}

/**
 * Decodes the escape sequences of a JavaScript string body (`\x41`, `\u0041`, `\u{41}`, octal, …).
 * Attackers spell module names with escapes (`require("child\x5fprocess")`), so literal values are
 * always compared after decoding.
 */
export function decodeJsEscapes(body: string): string {
  return body.includes('\\') ? decodeEscapes(body, jsEscape) : body;
}

/**
 * Decodes a Python string body. Returns null for `\N{name}` escapes, which cannot be decoded
 * without the Unicode name table; callers then treat the value as unknown.
 */
export function decodePyEscapes(body: string, raw: boolean, bytes: boolean): string | null {
  if (raw || !body.includes('\\')) return body;
  return decodeEscapes(body, (b, i) => pyEscape(b, i, bytes));
}

/** Decodes `\uXXXX` / `\u{X}` escapes, which JavaScript allows inside identifiers (`\u0065val`). */
export function decodeJsIdentifier(text: string): string {
  return text.includes('\\') ? decodeJsEscapes(text) : text;
}

/** Python compares identifiers after NFKC normalisation, so `ｅｖａｌ` is `eval`. */
export function normalizePyIdentifier(text: string): string {
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) > 0x7f) return text.normalize('NFKC');
  }
  return text;
}

/** A string expression folded to its value; unknown parts (interpolations, variables) are '\0'. */
export interface FoldedString {
  value: string;
  exact: boolean;
  /** How the text was decoded on its way here (`base64`, `hex`, `rot13`), when it was. */
  decodedFrom?: string;
}

export const UNKNOWN_PART = '\0';

export function concatFolded(a: FoldedString | null, b: FoldedString | null): FoldedString | null {
  if (!a && !b) return null;
  const folded: FoldedString = {
    value: (a?.value ?? UNKNOWN_PART) + (b?.value ?? UNKNOWN_PART),
    exact: !!a && !!b && a.exact && b.exact,
  };
  const decodedFrom = a?.decodedFrom ?? b?.decodedFrom;
  if (decodedFrom) folded.decodedFrom = decodedFrom;
  return folded;
}

export type PayloadEncoding = 'base64' | 'hex' | 'rot13';

const BASE64_TEXT = /^[A-Za-z0-9+/\-_\s]*={0,2}\s*$/;
const HEX_TEXT = /^(?:[0-9A-Fa-f]{2}|\s)*$/;

function rot13(text: string): string {
  return text.replace(/[A-Za-z]/g, (c) => {
    const base = c <= 'Z' ? 65 : 97;
    return String.fromCharCode(((c.charCodeAt(0) - base + 13) % 26) + base);
  });
}

/**
 * Decodes a payload the way base64.b64decode, bytes.fromhex, codecs.decode(…, 'rot13'), atob and
 * Buffer.from(…, enc) do, so that what an encoded string hides can be checked like any literal.
 * Null when the text is not valid in that encoding (or holds unknown parts).
 */
export function decodePayload(folded: FoldedString, encoding: PayloadEncoding): FoldedString | null {
  const text = folded.value;
  if (!folded.exact) return null;
  let value: string;
  if (encoding === 'rot13') value = rot13(text);
  else if (encoding === 'hex') {
    if (!HEX_TEXT.test(text)) return null;
    value = Buffer.from(text.replace(/\s/g, ''), 'hex').toString('latin1');
  } else {
    if (!BASE64_TEXT.test(text)) return null;
    value = Buffer.from(text, 'base64').toString('latin1');
  }
  return { value, exact: true, decodedFrom: encoding };
}

/** A decoded payload named for a message: its encoding and its first line. */
export function payloadMessage(what: string, folded: FoldedString): string {
  const code = folded.value.trim().replace(/\s*\n\s*/g, '; ');
  return `${what} runs ${folded.decodedFrom ?? 'encoded'}-decoded code ("${snippet(code, 50)}"), hiding what it does`;
}

/** Parses the text of a numeric literal (underscores, hex/octal/binary prefixes, BigInt suffix). */
export function parseNumberLiteral(text: string): number | null {
  let t = text.split('_').join('');
  if (t.endsWith('n')) t = t.slice(0, -1);
  if (t.endsWith('j') || t.endsWith('J')) return null;
  const v = Number(t);
  return Number.isNaN(v) ? null : v;
}

export function applyArithmetic(op: string, a: number, b: number): number | null {
  switch (op) {
    case '+':
      return a + b;
    case '-':
      return a - b;
    case '*':
      return a * b;
    case '/':
      return b === 0 ? null : a / b;
    case '//':
      return b === 0 ? null : Math.floor(a / b);
    case '%':
      return b === 0 ? null : a % b;
    case '**':
      return a ** b;
    case '<<':
      return a * 2 ** b;
    case '>>':
      return Math.floor(a / 2 ** b);
    default:
      return null;
  }
}

// The sandbox gives every run a private /tmp, and the standard streams are the run's own.
const ALLOWED_ABSOLUTE = new Set(['/dev/stdin', '/dev/stdout', '/dev/stderr', '/dev/null', '/tmp']);

function hasParentSegment(path: string): boolean {
  let start = 0;
  for (let i = 0; i <= path.length; i++) {
    const ch = path[i];
    if (i === path.length || ch === '/' || ch === '\\') {
      if (i - start === 2 && path[start] === '.' && path[start + 1] === '.') return true;
      start = i + 1;
    }
  }
  return false;
}

function isAbsolute(path: string): boolean {
  const c0 = path[0];
  if (c0 === '/' || c0 === '\\' || c0 === '~') return true;
  // Windows drive letters and file: URLs point outside the working directory just the same.
  const letter = (path.charCodeAt(0) | 0x20) - 0x61;
  if (path[1] === ':' && letter >= 0 && letter < 26) return true;
  return path.toLowerCase().startsWith('file:');
}

/**
 * Whether a path (possibly with unknown parts marked '\0') may leave the working directory.
 * 'outside': certainly or probably outside; 'inside': relative and without '..'.
 */
export function classifyPath(path: string): 'outside' | 'inside' {
  if (hasParentSegment(path)) return 'outside';
  if (ALLOWED_ABSOLUTE.has(path) || path.startsWith('/tmp/')) return 'inside';
  return isAbsolute(path) ? 'outside' : 'inside';
}

/** A printable form of a path for a message (unknown parts shown as …). */
export function showPath(path: string): string {
  return snippet(path.split(UNKNOWN_PART).join('…'), 60);
}

export type ImportRule =
  | 'import_process'
  | 'import_native_code'
  | 'import_dynamic_code'
  | 'import_system'
  | 'import_network'
  | 'import_introspection'
  | 'import_threading';

const IMPORT_PURPOSE: Record<ImportRule, string> = {
  import_process: 'a module for starting other programs and shell commands',
  import_native_code: 'which can call native code and read or write raw memory',
  import_dynamic_code: 'which can load or run code that is not in your source',
  import_system: 'which gives access to the operating system (files, processes, signals or environment)',
  import_network: 'a networking module (runs have no network access)',
  import_introspection: "which can reach the interpreter's hidden objects",
  import_threading: 'a threading module (threads count against the process limit)',
};

export function importMessage(rule: ImportRule, module: string): string {
  return `Imports "${module}", ${IMPORT_PURPOSE[rule]}`;
}

const REFERENCE_PURPOSE: Partial<Record<RuleId, string>> = {
  dynamic_code: 'which runs code built from text at run time',
  dynamic_import: 'which imports a module chosen at run time',
  debugger_access: 'which starts an interactive debugger or console that runs commands read from input',
  scope_introspection: "which exposes the program's variables as a dictionary",
  introspection_escape: 'an interpreter internal commonly used to break out of a sandbox',
  sys_internals: 'an interpreter internal',
  process_spawn: 'which starts another program or shell command',
  process_signal: 'which sends signals to processes',
  thread_spawn: 'which starts another process or a thread',
  network_connect: 'which opens a network connection (runs have no network access)',
  environment_dump: 'which reads every environment variable at once',
  process_exit: 'which ends the process abruptly',
  environment_access: 'which reads or changes environment variables',
  module_loader: "which reaches Node's module loader and loads modules unseen",
  process_internals: 'a Node.js internal that loads native code or bypasses the module system',
  network_access: 'a network API (runs have no network access)',
};

/** Message for a use of a known dangerous name, e.g. `Uses os.system, which starts …`. */
export function referenceMessage(rule: RuleId, name: string): string {
  const purpose = REFERENCE_PURPOSE[rule];
  return purpose ? `Uses ${name}, ${purpose}` : `Uses ${name}`;
}
