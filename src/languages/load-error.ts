import { z } from 'zod';
import type { RunResult, RunSpec } from '../sandbox/types.js';
import type { Diagnostic } from './diagnostics.js';

/**
 * Compile errors only the runtime finds when it loads the program (Python's compile(), V8's parse:
 * a duplicate `let`, `break` outside a loop, `nonlocal` at module level…). The bootstrap compiles the
 * entry file before running any of it and, when that fails, writes one line
 * "\0WARDEN_COMPILE <nonce> <json>" to stderr and exits 1. The nonce is a per-run secret of the
 * payload head (encodePayload), held by the bootstrap only until the compile succeeds, so a program
 * that prints such a line itself, exits 1 or raises SyntaxError at run time (eval, JSON.parse,
 * compile()) cannot make its run pass for a compile error: it never learns the nonce. For an ES
 * module the bootstrap writes "\0WARDEN_COMPILE_ESM <nonce>" and Node's own report of the failed
 * parse follows (the only place its position is told).
 */

const MARKER = '\0WARDEN_COMPILE ';
const ESM_MARKER = '\0WARDEN_COMPILE_ESM ';
/** What Node prints for a fatal SyntaxError: "file:///box/main.js:3\n<line>\n    ^\n\nSyntaxError: …". */
const NODE_FATAL = /^[^\n]*:(\d+)\n[^\n]*\n([ \t]*)\^[^\n]*\n\n(\w*Error: [^\n]*)/;

const reportSchema = z.object({
  line: z.number().int().nullable(),
  column: z.number().int().nullable(),
  message: z.string(),
});

/** The run's nonce: the payload head's first field. */
function payloadNonce(spec: RunSpec): string | null {
  if (spec.payload === undefined) return null;
  const payload = Buffer.from(spec.payload);
  const end = payload.indexOf(0);
  return end > 0 ? payload.subarray(0, end).toString('utf8') : null;
}

/** The load-time compile error the bootstrap reported for this run, or null when there was none. */
export function loadError(spec: RunSpec, result: RunResult): Diagnostic | null {
  if (result.status !== 'failed' || result.exitCode !== 1) return null;
  const nonce = payloadNonce(spec);
  if (!nonce) return null;
  const esm = `${ESM_MARKER}${nonce}\n`;
  const esmAt = result.stderr.lastIndexOf(esm);
  if (esmAt >= 0) {
    // Only Node wrote after this line: the module stopped at its parse, before any of it ran.
    const printed = result.stderr.slice(esmAt + esm.length);
    const m = NODE_FATAL.exec(printed);
    if (m) return { line: Number(m[1]), column: m[2]!.length + 1, message: m[3]! };
    const message = /^\w*Error: [^\n]*/m.exec(printed)?.[0] ?? 'the runtime could not load the module';
    return { line: null, column: null, message };
  }
  const head = `${MARKER}${nonce} `;
  const at = result.stderr.lastIndexOf(head);
  if (at < 0) return null;
  const end = result.stderr.indexOf('\n', at);
  const text = result.stderr.slice(at + head.length, end < 0 ? undefined : end);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return null;
  }
  const report = reportSchema.safeParse(json);
  return report.success ? report.data : null;
}
