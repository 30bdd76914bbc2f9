import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as prettier from 'prettier';
import ts from 'typescript';
import { z } from 'zod';
import { ENV_OVERRIDES } from '../src/config/load.js';
import { configSchema } from '../src/config/schema.js';

/**
 * docs/configuration.md, generated from the configuration's zod schema (`npm run docs:config`): the
 * keys, types, bounds and defaults come from the schema itself (as JSON Schema), the explanations
 * from each key's `.describe()` or, failing that, the doc comment above it in src/config/. A test
 * fails when the committed file differs from a fresh generation.
 */

export const CONFIG_DOCS_PATH = fileURLToPath(new URL('../docs/configuration.md', import.meta.url));
const CONFIG_DIR = fileURLToPath(new URL('../src/config/', import.meta.url));

/** Defaults computed from the machine the schema is loaded on: the reference names the rule instead. */
const MACHINE_DEFAULTS: Record<string, string> = {
  'workers.concurrency': 'the number of CPU cores',
};

interface JsonSchema {
  type?: string;
  description?: string;
  default?: unknown;
  enum?: unknown[];
  const?: unknown;
  pattern?: string;
  format?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: JsonSchema | boolean;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
}

// --- doc comments of the schema's object literals, by dotted key ---

type Declarations = Map<string, ts.VariableDeclaration>;

function declarations(): Declarations {
  const found: Declarations = new Map();
  for (const name of readdirSync(CONFIG_DIR).filter((f) => f.endsWith('.ts'))) {
    const file = CONFIG_DIR + name;
    const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
    source.forEachChild(function visit(node) {
      if (ts.isVariableDeclaration(node) && ts.isIdentifier(node.name) && node.initializer) {
        found.set(node.name.text, node);
      }
      node.forEachChild(visit);
    });
  }
  return found;
}

/** The object literals an expression's schema is built from (`z.object({…})`, `.extend({…})`, a named schema…). */
function shapesOf(
  expr: ts.Expression,
  decls: Declarations,
  seen = new Set<string>(),
): ts.ObjectLiteralExpression[] {
  if (ts.isIdentifier(expr)) {
    const target = decls.get(expr.text)?.initializer;
    if (!target || seen.has(expr.text)) return [];
    return shapesOf(target, decls, new Set([...seen, expr.text]));
  }
  if (ts.isParenthesizedExpression(expr) || ts.isAsExpression(expr))
    return shapesOf(expr.expression, decls, seen);
  if (!ts.isCallExpression(expr) || !ts.isPropertyAccessExpression(expr.expression)) return [];
  const method = expr.expression.name.text;
  const receiver = expr.expression.expression;
  const [first] = expr.arguments;
  if (ts.isIdentifier(receiver) && receiver.text === 'z') {
    if (
      ['object', 'strictObject', 'looseObject'].includes(method) &&
      first &&
      ts.isObjectLiteralExpression(first)
    )
      return [first];
    return [];
  }
  const inner = shapesOf(receiver, decls, seen);
  if (method === 'extend' && first && ts.isObjectLiteralExpression(first)) return [...inner, first];
  return inner;
}

/** The element schema of `z.array(X)` / the value schema of `z.record(K, V)` in a property's chain. */
function containerOf(expr: ts.Expression): { kind: '[]' | '*'; inner: ts.Expression } | undefined {
  while (ts.isCallExpression(expr) && ts.isPropertyAccessExpression(expr.expression)) {
    const receiver = expr.expression.expression;
    const method = expr.expression.name.text;
    if (ts.isIdentifier(receiver) && receiver.text === 'z') {
      if (method === 'array' && expr.arguments[0]) return { kind: '[]', inner: expr.arguments[0] };
      if (method === 'record' && expr.arguments[1]) return { kind: '*', inner: expr.arguments[1] };
      return undefined;
    }
    expr = receiver;
  }
  return undefined;
}

function docComment(node: ts.Node): string | undefined {
  const texts = ts
    .getJSDocCommentsAndTags(node)
    .filter(ts.isJSDoc)
    .map((doc) => ts.getTextOfJSDocComment(doc.comment) ?? '')
    .filter(Boolean);
  return texts.length > 0 ? texts.join('\n\n') : undefined;
}

/** The named schema a property's chain starts from (`limitsSchema.default(…)` → limitsSchema). */
function rootName(expr: ts.Expression): string | undefined {
  while (ts.isCallExpression(expr) && ts.isPropertyAccessExpression(expr.expression))
    expr = expr.expression.expression;
  return ts.isIdentifier(expr) && expr.text !== 'z' ? expr.text : undefined;
}

function collectComments(
  expr: ts.Expression,
  prefix: string,
  decls: Declarations,
  out: Map<string, string>,
): void {
  for (const shape of shapesOf(expr, decls)) {
    for (const prop of shape.properties) {
      if (!ts.isPropertyAssignment(prop) || !(ts.isIdentifier(prop.name) || ts.isStringLiteral(prop.name)))
        continue;
      const key = prefix + prop.name.text;
      // The key's own comment, else the comment on the named schema it uses (a section's purpose).
      const named = rootName(prop.initializer);
      const declared = named ? decls.get(named) : undefined;
      const comment = docComment(prop) ?? (declared ? docComment(declared) : undefined);
      if (comment) out.set(key, comment);
      collectComments(prop.initializer, `${key}.`, decls, out);
      const container = containerOf(prop.initializer);
      if (container)
        collectComments(container.inner, `${key}${container.kind === '[]' ? '[]' : '.*'}.`, decls, out);
    }
  }
}

export function configComments(): Map<string, string> {
  const decls = declarations();
  const root = decls.get('configSchema')?.initializer;
  if (!root) throw new Error('src/config: no `configSchema` declaration');
  const out = new Map<string, string>();
  collectComments(root, '', decls, out);
  return out;
}

// --- rendering ---

const code = (v: unknown) => `\`${typeof v === 'string' ? v : JSON.stringify(v)}\``;
const MAX_SAFE = Number.MAX_SAFE_INTEGER;

const UNITS: [string, number][] = [
  ['GiB', 2 ** 30],
  ['MiB', 2 ** 20],
  ['KiB', 2 ** 10],
];

/** A default, with sizes also in KiB/MiB/GiB (`16777216 (16 MiB)`). */
function shown(key: string, value: unknown): string {
  if (typeof value !== 'number' || !/Bytes$/.test(key)) return code(value);
  const unit = UNITS.find(([, n]) => value >= n && value % n === 0);
  return unit ? `${code(value)} (${value / unit[1]} ${unit[0]})` : code(value);
}

function typeOf(s: JsonSchema): string {
  const alternatives = s.anyOf ?? s.oneOf;
  if (alternatives) return alternatives.map(typeOf).join(', or ');
  if (s.allOf) return s.allOf.map(typeOf).join(' and ');
  if (s.enum) return `one of ${s.enum.map(code).join(', ')}`;
  if (s.const !== undefined) return code(s.const);
  switch (s.type) {
    case 'integer':
    case 'number': {
      const low = s.minimum ?? s.exclusiveMinimum;
      const high = s.maximum !== undefined && s.maximum < MAX_SAFE ? s.maximum : s.exclusiveMaximum;
      const name = s.type === 'integer' ? 'integer' : 'number';
      if (low !== undefined && high !== undefined && s.exclusiveMinimum === undefined)
        return `${name}, ${low} to ${high}`;
      const parts = [
        low !== undefined ? `${s.exclusiveMinimum !== undefined ? '>' : '≥'} ${low}` : '',
        high !== undefined ? `≤ ${high}` : '',
      ].filter(Boolean);
      return parts.length ? `${name} ${parts.join(', ')}` : name;
    }
    case 'string': {
      if (s.format === 'uri') return 'URL';
      if (s.pattern) return `string matching ${code(s.pattern)}`;
      if (s.minLength !== undefined && s.minLength > 1) return `string of at least ${s.minLength} characters`;
      return 'string';
    }
    case 'array':
      return `list of ${s.items ? typeOf(s.items) : 'values'}`;
    case 'object':
      if (s.properties) return 'section';
      if (s.additionalProperties && typeof s.additionalProperties === 'object')
        return `map of name → ${typeOf(s.additionalProperties)}`;
      return 'object';
    default:
      return s.type ?? 'any';
  }
}

/** One paragraph per blank-line-separated block of the comment; single line breaks are wrapping. */
function prose(text: string): string {
  return text
    .split(/\n\s*\n/)
    .map((p) => p.replace(/\s*\n\s*/g, ' ').trim())
    .join('\n\n');
}

function isSection(s: JsonSchema): boolean {
  return s.type === 'object' && s.properties !== undefined;
}

/** The schema of an object inside `anyOf` (e.g. an optional section), when there is one. */
function objectIn(s: JsonSchema): JsonSchema | undefined {
  if (isSection(s)) return s;
  return (s.anyOf ?? []).find(isSection);
}

interface Entry {
  key: string;
  schema: JsonSchema;
  required: boolean;
  /** The key's value in its section's default, when the section has one and the key none. */
  sectionDefault?: unknown;
}

function entries(s: JsonSchema, prefix: string): { leaves: Entry[]; sections: [string, JsonSchema][] } {
  const leaves: Entry[] = [];
  const sections: [string, JsonSchema][] = [];
  for (const [name, child] of Object.entries(s.properties ?? {})) {
    const key = prefix + name;
    const object = objectIn(child);
    if (object) sections.push([key, { ...object, description: child.description ?? object.description }]);
    else {
      const sectionDefault = (s.default as Record<string, unknown> | undefined)?.[name];
      leaves.push({ key, schema: child, required: s.required?.includes(name) ?? false, sectionDefault });
    }
    const items = child.type === 'array' ? child.items : undefined;
    if (items && isSection(items)) sections.push([`${key}[]`, items]);
  }
  return { leaves, sections };
}

function renderLeaf(e: Entry, comments: Map<string, string>, env: Map<string, string>): string {
  const facts = [typeOf(e.schema)];
  const section = e.key.slice(0, e.key.lastIndexOf('.'));
  if (MACHINE_DEFAULTS[e.key]) facts.push(`default: ${MACHINE_DEFAULTS[e.key]}`);
  else if (e.schema.default !== undefined) facts.push(`default ${shown(e.key, e.schema.default)}`);
  else if (e.sectionDefault !== undefined)
    facts.push(`default ${shown(e.key, e.sectionDefault)}`, `required when \`${section}\` is given`);
  else if (e.required) facts.push('required');
  else facts.push('unset by default');
  const variable = env.get(e.key);
  if (variable) facts.push(`environment variable ${code(variable)}`);
  const text = e.schema.description ?? comments.get(e.key);
  return [`#### \`${e.key}\``, facts.join(' · '), ...(text ? [prose(text)] : [])].join('\n\n');
}

function renderSection(
  key: string,
  s: JsonSchema,
  depth: number,
  comments: Map<string, string>,
  env: Map<string, string>,
): string[] {
  const { leaves, sections } = entries(s, `${key}.`);
  const text = s.description ?? comments.get(key);
  const out = [`${'#'.repeat(Math.min(depth, 3))} \`${key}\``];
  if (text) out.push(prose(text));
  out.push(...leaves.map((e) => renderLeaf(e, comments, env)));
  for (const [child, schema] of sections) out.push(...renderSection(child, schema, depth + 1, comments, env));
  return out;
}

const INTRO = `# Configuration reference

Generated by \`npm run docs:config\` (scripts/gen-config-docs.ts) from the configuration's zod schema
(\`src/config/\`): do not edit by hand; change the schema (its \`.describe()\` or the comment above a
key) and regenerate. A test fails when this file is stale.

Warden reads its configuration once, at start: the YAML file named by \`--config\` or
\`WARDEN_CONFIG\` (else \`./warden.yaml\` when it exists), then the environment variables listed
below, then command-line flags. The result is validated as a whole: an unknown key, a value of the
wrong type or out of bounds stops the start with \`path.to.key: what is wrong\` (naming the variable
when it came from one). Every key is optional; sizes are bytes, times milliseconds unless the name
says otherwise.

\`\`\`yaml
# warden.yaml: a multi-node example (see operations.md)
server: { host: 0.0.0.0, port: 8080 }
store: { databaseUrl: postgres://warden:secret@db.internal/warden }
queue: { redisUrl: redis://redis.internal:6379/0 }
artifacts: { s3: { bucket: warden-artifacts, region: eu-west-1 } }
\`\`\``;

export async function configDocsSource(): Promise<string> {
  const schema = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  const comments = configComments();
  const env = new Map(ENV_OVERRIDES.map(([variable, key]) => [key, variable]));
  const { leaves, sections } = entries(schema, '');
  const parts = [INTRO];
  if (leaves.length > 0) {
    parts.push('## Top level', ...leaves.map((e) => renderLeaf(e, comments, env)));
  }
  for (const [key, s] of sections) parts.push(...renderSection(key, s, 2, comments, env));
  const options = (await prettier.resolveConfig(CONFIG_DOCS_PATH)) ?? {};
  return prettier.format(parts.join('\n\n') + '\n', { ...options, filepath: CONFIG_DOCS_PATH });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(CONFIG_DOCS_PATH, await configDocsSource());
  process.stdout.write(`wrote ${CONFIG_DOCS_PATH}\n`);
}
