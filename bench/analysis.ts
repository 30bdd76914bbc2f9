/**
 * Benchmark of the static analyser (SPEC §4: under 100 ms for a 2,000-line file).
 *
 * Run alone with `npx tsx bench/analysis.ts`; bench/run.ts can import benchAnalysis().
 */
import { pathToFileURL } from 'node:url';
import { analyze, warmUp, type AnalysisLanguage } from '../src/analysis/index.js';

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

function percentile(sorted: number[], p: number): number {
  const index = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, index)] ?? NaN;
}

const round = (n: number): number => Math.round(n * 100) / 100;

export async function benchAnalysis(): Promise<Record<string, unknown>> {
  await warmUp();
  const results: Record<string, unknown> = {};
  for (const language of ['python', 'javascript', 'typescript'] as const) {
    const code = generateSource(language);
    // The generated file is larger than the default 50,000-character limit; the benchmark measures speed.
    const policy = { maxCodeChars: code.length };
    for (let i = 0; i < 5; i++) await analyze(code, language, policy);
    const times: number[] = [];
    let findings = 0;
    for (let i = 0; i < RUNS; i++) {
      const report = await analyze(code, language, policy);
      times.push(report.durationMs);
      findings = report.findings.length;
    }
    times.sort((a, b) => a - b);
    results[language] = {
      lines: code.split('\n').length - 1,
      chars: code.length,
      findings,
      runs: RUNS,
      medianMs: round(percentile(times, 50)),
      p95Ms: round(percentile(times, 95)),
    };
  }
  return results;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log(JSON.stringify(await benchAnalysis(), null, 2));
}
