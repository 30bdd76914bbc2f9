/**
 * Benchmark of the static analyser (SPEC §4: under 100 ms for a 2,000-line file).
 *
 * Besides the whole analyze(), it splits the time into parsing and the analysers' walk, and compares
 * web-tree-sitter (wasm, what the analyser uses) with the native `tree-sitter` Node binding on the
 * same files in the same run. The native binding is not a dependency (see nativeParsers): to include
 * it, install it outside the project and point Node's resolution at it, e.g.
 * `npm install --prefix /tmp/ts tree-sitter@0.25.1 && NODE_PATH=/tmp/ts/node_modules npx tsx bench/analysis.ts`.
 *
 * Run alone with `npx tsx bench/analysis.ts`; `npm run bench -- analysis` runs it through bench/run.ts.
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import type { Node } from 'web-tree-sitter';
import { analyze, warmUp, type AnalysisLanguage } from '../src/analysis/index.js';
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

/** The part of a tree node both bindings share that a full traversal needs. */
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
 * which Debian 12 lacks, so `npm install` compiles it with node-gyp (≈ 20 s); and installing it in the
 * project clashes with tree-sitter-typescript 0.23's optional peer `tree-sitter@^0.21` (ERESOLVE),
 * hence the separate prefix. The grammar packages' own native bindings load from their prebuilds.
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

/**
 * Visits every named node and reads its type: the node-access cost any analyser pays. Returns the
 * number of nodes visited.
 */
function traverse(node: WalkNode): number {
  let count = node.type === '' ? 0 : 1;
  for (const child of node.namedChildren) count += traverse(child);
  return count;
}

function timeMs(fn: () => unknown): number {
  const started = performance.now();
  fn();
  return performance.now() - started;
}

/** Median ms of `a` and of `b` (NaN without one), run alternately after five unmeasured rounds. */
function alternate(a: () => unknown, b: (() => unknown) | undefined): { a: number; b: number } {
  const times = { a: [] as number[], b: [] as number[] };
  for (let i = 0; i < RUNS + 5; i++) {
    const aMs = timeMs(a);
    const bMs = b ? timeMs(b) : NaN;
    if (i < 5) continue;
    times.a.push(aMs);
    times.b.push(bMs);
  }
  return { a: median(times.a), b: median(times.b) };
}

export async function benchAnalysis(): Promise<Record<string, unknown>> {
  await warmUp();
  const native = nativeParsers();
  const results: Record<string, unknown> = {};
  if (typeof native === 'string') results.native = native;
  for (const language of ['python', 'javascript', 'typescript'] as const) {
    const code = generateSource(language);
    // The generated file is larger than the default 50,000-character limit; the benchmark measures speed.
    const policy = { maxCodeChars: code.length };
    for (let i = 0; i < 5; i++) await analyze(code, language, policy);
    // analyze() parses with this very parser instance: timing its parse() inside each call splits
    // that call's duration into the parse and the analysers' walk.
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
    let findings = 0;
    try {
      for (let i = 0; i < RUNS; i++) {
        const report = await analyze(code, language, policy);
        times.push(report.durationMs);
        parseTimes.push(parsedMs);
        walkTimes.push(report.durationMs - parsedMs);
        findings = report.findings.length;
      }
    } finally {
      wasm.parse = parseOnce;
    }

    // Each pair measured alternately, one run each per round, so that a busy machine slows both alike;
    // parses and traversals in separate loops, so that one's garbage is not collected in the other.
    const nativeParser = typeof native === 'string' ? undefined : native.get(language);
    const parse = alternate(
      () => wasm.parse(code)?.delete(),
      nativeParser && (() => nativeParser.parse(code)),
    );
    const wasmTree = wasm.parse(code);
    if (!wasmTree) throw new Error(`web-tree-sitter returned no tree for ${language}`);
    const nativeTree = nativeParser?.parse(code);
    const walk = alternate(
      () => traverse(wasmTree.rootNode as Node & WalkNode),
      nativeTree && (() => traverse(nativeTree.rootNode)),
    );
    const namedNodes = traverse(wasmTree.rootNode as Node & WalkNode);
    wasmTree.delete();

    const analyzeMs = median(times);
    const wasmParseMs = parse.a;
    const nativeParseMs = parse.b;
    results[language] = {
      lines: code.split('\n').length - 1,
      chars: code.length,
      findings,
      runs: RUNS,
      medianMs: round(analyzeMs),
      p95Ms: round(percentile(times, 95)),
      // Medians of each analyze() call's own split: its wasm parse, and the rest (the analysers' walk).
      parseMs: round(median(parseTimes)),
      walkMs: round(median(walkTimes)),
      parsers: {
        wasmParseMs: round(wasmParseMs),
        nativeParseMs: round(nativeParseMs),
        nativeSpeedup: round(wasmParseMs / nativeParseMs),
        // A bare visit of every named node reading its type, over the same tree, per binding.
        wasmTraverseMs: round(walk.a),
        nativeTraverseMs: round(walk.b),
        namedNodes,
      },
    };
  }
  return results;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log(JSON.stringify(await benchAnalysis(), null, 2));
}
