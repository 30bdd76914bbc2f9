/**
 * Benchmark of the static analyser (SPEC §4: under 100 ms for a 2,000-line file; issue 13: ≤ 10 ms).
 *
 * Besides the whole analyze(), it splits the time into parsing and the analyser's walk, and times
 * each parser on the same files in the same rounds (one run of each per round, so that a busy machine
 * slows all alike):
 * - web-tree-sitter (wasm): what the analyser uses;
 * - the native `tree-sitter` binding, its tree walked by the very same analyser (its nodes have the
 *   same methods). Not a dependency (see nativeParsers): to include it, install it outside the
 *   project and point Node's resolution at it, e.g. `npm install --prefix /tmp/ts --legacy-peer-deps
 *   tree-sitter@0.25.1 tree-sitter-python@0.25.0 tree-sitter-javascript@0.25.0
 *   tree-sitter-typescript@0.23.2 && NODE_PATH=/tmp/ts/node_modules npm run bench -- analysis`;
 * - oxc-parser (JavaScript and TypeScript) and acorn (JavaScript): their trees (ESTree) have other
 *   node types and fields than the grammar tables the analyser is driven by, so they are timed parsing
 *   and then turned into parent-linked nodes with fields: a lower bound for such a parser.
 *
 * Run alone with `npx tsx bench/analysis.ts`; `npm run bench -- analysis` runs it through bench/run.ts.
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { parse as acornParse } from 'acorn';
import type { Node } from 'web-tree-sitter';
import {
  analyze,
  analyzeTree,
  DEFAULT_POLICY,
  warmUp,
  type AnalysisLanguage,
} from '../src/analysis/index.js';
import { getParser } from '../src/analysis/parser.js';
import { median, percentile, round } from './stats.js';

const TARGET_LINES = 2_000;
const RUNS = 50;

function pythonChunk(i: number): string {
  return `
class Inventory${i}:
    """Keeps item counts for warehouse ${i}."""

    def __init__(self, name, capacity=100):
        self.name = name
        self.capacity = capacity
        self.items = {}

    def add(self, item, count=1):
        if count <= 0:
            raise ValueError(f"bad count {count} for {item}")
        total = sum(self.items.values()) + count
        if total > self.capacity:
            return False
        self.items[item] = self.items.get(item, 0) + count
        return True

    def report(self):
        lines = [f"{k}: {v}" for k, v in sorted(self.items.items()) if v]
        return "\\n".join(lines)


def score_${i}(values, weights=None):
    weights = weights or [1] * len(values)
    best = max((v * w for v, w in zip(values, weights)), default=0)
    for index, value in enumerate(values):
        if value < 0 and index % 2 == 0:
            continue
        best = max(best, value ** 2 // (index + 1))
    return {"best": best, "count": len(values), "name": "score_${i}"}
`;
}

function jsChunk(i: number, typed: boolean): string {
  const t = (s: string): string => (typed ? s : '');
  return `
class Inventory${i} {
  constructor(name${t(': string')}, capacity${t(': number')} = 100) {
    this.name = name;
    this.capacity = capacity;
    this.items = new Map();
  }

  add(item${t(': string')}, count = 1)${t(': boolean')} {
    if (count <= 0) throw new Error(\`bad count \${count} for \${item}\`);
    const total = [...this.items.values()].reduce((a, b) => a + b, 0) + count;
    if (total > this.capacity) return false;
    this.items.set(item, (this.items.get(item) ?? 0) + count);
    return true;
  }

  report()${t(': string')} {
    return [...this.items.entries()]
      .filter(([, v]) => v > 0)
      .map(([k, v]) => \`\${k}: \${v}\`)
      .join('\\n');
  }
}

export function score${i}(values${t(': number[]')}, weights${t('?: number[]')})${t(': { best: number; count: number }')} {
  const w = weights ?? values.map(() => 1);
  let best = 0;
  for (let index = 0; index < values.length; index++) {
    const value = values[index]${t(' as number')};
    if (value < 0 && index % 2 === 0) continue;
    best = Math.max(best, (value * (w[index] ?? 1)) / (index + 1));
  }
  return { best, count: values.length };
}
`;
}

const FINDINGS: Record<AnalysisLanguage, string> = {
  python: `import os\nimport subprocess\nsubprocess.run(["ls"])\nwhile True:\n    pass\n`,
  javascript: `const cp = require('child_process');\ncp.exec('ls');\neval('1');\nwhile (true) {}\n`,
  typescript: `import cp from 'child_process';\ncp.exec('ls');\neval('1');\nwhile (true) {}\n`,
};

/** A realistic file of at least `lines` lines: ordinary classes and functions plus a few findings. */
export function generateSource(language: AnalysisLanguage, lines = TARGET_LINES): string {
  const parts = [FINDINGS[language]];
  let count = parts[0]?.split('\n').length ?? 0;
  for (let i = 0; count < lines; i++) {
    const chunk = language === 'python' ? pythonChunk(i) : jsChunk(i, language === 'typescript');
    parts.push(chunk);
    count += chunk.split('\n').length - 1;
  }
  return parts.join('').split('\n').slice(0, lines).join('\n') + '\n';
}

/** The part of a tree node both tree-sitter bindings share that a full traversal needs. */
interface WalkNode {
  type: string;
  namedChildren: WalkNode[];
}

interface NativeParser {
  setLanguage(language: unknown): void;
  parse(code: string): { rootNode: WalkNode };
}

const require = createRequire(import.meta.url);

/**
 * The native binding, or why it is unavailable. Its linux-x64 prebuild needs GLIBCXX_3.4.31 (GCC 13),
 * which Debian 12 lacks, so `npm install` compiles it with node-gyp (≈ 20 s quiet, a minute busy); and
 * installing it in the project clashes with tree-sitter-typescript 0.23's optional peer
 * `tree-sitter@^0.21` (ERESOLVE), hence the separate prefix.
 */
function nativeParsers(): Map<AnalysisLanguage, NativeParser> | string {
  try {
    const NativeParserClass = require('tree-sitter') as new () => NativeParser;
    const grammars: Record<AnalysisLanguage, unknown> = {
      python: require('tree-sitter-python'),
      javascript: require('tree-sitter-javascript'),
      typescript: (require('tree-sitter-typescript') as { typescript: unknown }).typescript,
    };
    const parsers = new Map<AnalysisLanguage, NativeParser>();
    for (const [language, grammar] of Object.entries(grammars) as [AnalysisLanguage, unknown][]) {
      const parser = new NativeParserClass();
      parser.setLanguage(grammar);
      parsers.set(language, parser);
    }
    return parsers;
  } catch (err) {
    return `native tree-sitter unavailable: ${(err as Error).message.split('\n')[0]}`;
  }
}

/** Visits every named node and reads its type: the node-access cost any analyser pays. */
function traverse(node: WalkNode): number {
  let count = node.type === '' ? 0 : 1;
  for (const child of node.namedChildren) count += traverse(child);
  return count;
}

/** A tree node as a mapping of ESTree onto the grammar tables would at least build: parent, children, fields. */
class MappedNode {
  readonly namedChildren: MappedNode[] = [];
  readonly fields: Record<string, MappedNode> = {};

  constructor(
    readonly type: string,
    readonly startIndex: number,
    readonly endIndex: number,
    readonly parent: MappedNode | null,
  ) {}
}

function isEstreeNode(value: unknown): value is { type: string; start: number; end: number } {
  return (
    typeof value === 'object' && value !== null && typeof (value as { type?: unknown }).type === 'string'
  );
}

/** Builds one MappedNode per ESTree node (positions are not nodes): the least such a mapping costs. */
function mapEstree(
  node: { type: string; start: number; end: number },
  parent: MappedNode | null,
): MappedNode {
  const mapped = new MappedNode(node.type, node.start, node.end, parent);
  for (const key in node) {
    const value = (node as unknown as Record<string, unknown>)[key];
    if (Array.isArray(value)) {
      for (const item of value) if (isEstreeNode(item)) mapped.namedChildren.push(mapEstree(item, mapped));
    } else if (isEstreeNode(value)) {
      const child = mapEstree(value, mapped);
      mapped.namedChildren.push(child);
      mapped.fields[key] = child;
    }
  }
  return mapped;
}

function timeMs(fn: () => unknown): number {
  const started = performance.now();
  fn();
  return performance.now() - started;
}

/** Median ms of each function, run in turn once per round, after five unmeasured rounds. */
function interleaved(fns: Record<string, () => unknown>): Record<string, number> {
  const times: Record<string, number[]> = Object.fromEntries(Object.keys(fns).map((k) => [k, []]));
  for (let i = 0; i < RUNS + 5; i++) {
    for (const [name, fn] of Object.entries(fns)) {
      const ms = timeMs(fn);
      if (i >= 5) times[name]?.push(ms);
    }
  }
  return Object.fromEntries(Object.entries(times).map(([k, v]) => [k, round(median(v))]));
}

type OxcParse = typeof import('oxc-parser').parseSync;

/** oxc-parser, or why it is unavailable (its native binding is a per-platform optional package). */
async function loadOxc(): Promise<OxcParse | string> {
  try {
    return (await import('oxc-parser')).parseSync;
  } catch (err) {
    return `oxc-parser unavailable: ${(err as Error).message.split('\n')[0]}`;
  }
}

/** The ESTree parsers measured for a language (none for Python). */
function estreeParsers(
  language: AnalysisLanguage,
  oxcParse: OxcParse | string,
): Record<string, (code: string) => unknown> {
  if (language === 'python') return {};
  const parsers: Record<string, (code: string) => unknown> = {};
  const file = language === 'typescript' ? 'input.ts' : 'input.js';
  if (typeof oxcParse !== 'string') {
    parsers['oxc-parser'] = (code) => {
      const result = oxcParse(file, code, { sourceType: 'module' });
      if (result.errors.length > 0) throw new Error(`oxc-parser: ${result.errors[0]?.message}`);
      // Reading `program` is what deserialises the tree (JSON on Node 20; raw transfer needs Node 22).
      return result.program;
    };
  }
  if (language === 'javascript') {
    parsers.acorn = (code) =>
      acornParse(code, { ecmaVersion: 'latest', sourceType: 'module', locations: true });
  }
  return parsers;
}

export async function benchAnalysis(): Promise<Record<string, unknown>> {
  await warmUp();
  const native = nativeParsers();
  const oxc = await loadOxc();
  const results: Record<string, unknown> = {};
  if (typeof native === 'string') results.native = native;
  if (typeof oxc === 'string') results.oxc = oxc;
  for (const language of ['python', 'javascript', 'typescript'] as const) {
    const code = generateSource(language);
    // The generated file is larger than the default 50,000-character limit; the benchmark measures speed.
    const policy = { ...DEFAULT_POLICY, maxCodeChars: code.length };
    for (let i = 0; i < 5; i++) await analyze(code, language, policy);
    // analyze() parses with this very parser instance: timing its parse() inside each call splits
    // that call's duration into the parse and the analyser's walk.
    const wasm = await getParser(language);
    const parseOnce = wasm.parse.bind(wasm);
    let parsedMs = NaN;
    wasm.parse = (...args: Parameters<typeof parseOnce>) => {
      const started = performance.now();
      const tree = parseOnce(...args);
      parsedMs = performance.now() - started;
      return tree;
    };
    const times: number[] = [];
    const parseTimes: number[] = [];
    const walkTimes: number[] = [];
    let findings: string[] = [];
    try {
      for (let i = 0; i < RUNS; i++) {
        const report = await analyze(code, language, policy);
        times.push(report.durationMs);
        parseTimes.push(parsedMs);
        walkTimes.push(report.durationMs - parsedMs);
        findings = report.findings.map((f) => `${f.rule}@${f.line}:${f.column}`);
      }
    } finally {
      wasm.parse = parseOnce;
    }

    // Parses and walks in separate loops, so that one's garbage is not collected in the other.
    const nativeParser = typeof native === 'string' ? undefined : native.get(language);
    const estree = estreeParsers(language, oxc);
    const parses: Record<string, () => unknown> = { 'web-tree-sitter': () => wasm.parse(code)?.delete() };
    if (nativeParser) parses['tree-sitter'] = () => nativeParser.parse(code);
    for (const [name, parse] of Object.entries(estree)) parses[name] = () => parse(code);
    const parseMs = interleaved(parses);

    const wasmTree = wasm.parse(code);
    if (!wasmTree) throw new Error(`web-tree-sitter returned no tree for ${language}`);
    const nativeTree = nativeParser?.parse(code);
    // The native binding's nodes have the methods the analyser calls, under the same names.
    const nativeRoot = nativeTree?.rootNode as unknown as Node | undefined;
    const walks: Record<string, () => unknown> = {
      'web-tree-sitter': () => analyzeTree(wasmTree.rootNode, code, language, policy),
    };
    const traversals: Record<string, () => unknown> = {
      'web-tree-sitter': () => traverse(wasmTree.rootNode as Node & WalkNode),
    };
    let nativeSameFindings: boolean | undefined;
    if (nativeRoot && nativeTree) {
      walks['tree-sitter'] = () => analyzeTree(nativeRoot, code, language, policy);
      traversals['tree-sitter'] = () => traverse(nativeTree.rootNode);
      const nativeFindings = analyzeTree(nativeRoot, code, language, policy);
      nativeSameFindings =
        nativeFindings.map((f) => `${f.rule}@${f.line}:${f.column}`).join() === findings.join();
    }
    const mappings: Record<string, () => unknown> = {};
    for (const [name, parse] of Object.entries(estree)) {
      const tree = parse(code);
      if (!isEstreeNode(tree)) throw new Error(`${name} returned no tree for ${language}`);
      mappings[name] = () => mapEstree(tree, null);
    }
    const walkMs = interleaved(walks);
    const traverseMs = interleaved(traversals);
    const mapMs = interleaved(mappings);
    const namedNodes = traverse(wasmTree.rootNode as Node & WalkNode);
    wasmTree.delete();

    const parsers: Record<string, Record<string, unknown>> = {};
    for (const name of Object.keys(parses)) {
      const entry: Record<string, unknown> = { parseMs: parseMs[name] };
      if (walks[name]) {
        entry.walkMs = walkMs[name];
        entry.totalMs = round((parseMs[name] ?? NaN) + (walkMs[name] ?? NaN));
      }
      if (traversals[name]) entry.traverseMs = traverseMs[name];
      if (mappings[name]) {
        entry.mapMs = mapMs[name];
        entry.parseAndMapMs = round((parseMs[name] ?? NaN) + (mapMs[name] ?? NaN));
      }
      parsers[name] = entry;
    }
    if (parsers['tree-sitter']) parsers['tree-sitter'].sameFindings = nativeSameFindings;
    results[language] = {
      lines: code.split('\n').length - 1,
      chars: code.length,
      findings: findings.length,
      runs: RUNS,
      medianMs: round(median(times)),
      p95Ms: round(percentile(times, 95)),
      // Medians of each analyze() call's own split: its wasm parse, and the rest (the analyser's walk).
      parseMs: round(median(parseTimes)),
      walkMs: round(median(walkTimes)),
      namedNodes,
      // Per parser, in the same rounds: parseMs. Tree-sitter bindings: walkMs (the analyser's walk
      // over that parser's tree), totalMs, and traverseMs (a bare visit of every named node reading
      // its type). ESTree parsers, which cannot feed the analyser: mapMs, building a parent-linked
      // node with its fields for each ESTree node, the least a mapping onto the grammar tables costs
      // before any walk; parseAndMapMs is thus a lower bound for such a parser's whole analysis.
      parsers,
    };
  }
  return results;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log(JSON.stringify(await benchAnalysis(), null, 2));
}
