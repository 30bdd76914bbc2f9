import { expect } from 'vitest';
import { analyze, type AnalysisLanguage, type Finding } from '../../src/analysis/index.js';

export interface Dangerous {
  /** What the fixture shows, used as the test name. */
  name: string;
  code: string;
  /** Each expected finding: rule id and 1-based line. */
  expect: [rule: string, line: number][];
}

function show(findings: Finding[]): string {
  return findings.length === 0
    ? '(no findings)'
    : findings.map((f) => `  ${f.line}:${f.column} ${f.severity} ${f.rule} — ${f.message}`).join('\n');
}

/** Asserts that every expected (rule, line) pair was found. */
export async function expectFindings(
  code: string,
  language: AnalysisLanguage,
  expected: [string, number][],
): Promise<Finding[]> {
  const report = await analyze(code, language);
  for (const [rule, line] of expected) {
    const hit = report.findings.some((f) => f.rule === rule && f.line === line);
    expect(
      hit,
      `expected ${rule} on line ${line} in ${language}:\n${code}\nfound:\n${show(report.findings)}`,
    ).toBe(true);
  }
  return report.findings;
}

/** Asserts that the code produces no findings at all (optionally ignoring some rule ids). */
export async function expectClean(
  code: string,
  language: AnalysisLanguage,
  ignore: string[] = [],
): Promise<void> {
  const report = await analyze(code, language);
  const relevant = report.findings.filter((f) => !ignore.includes(f.rule));
  expect(relevant, `expected no findings in ${language}:\n${code}\nfound:\n${show(relevant)}`).toEqual([]);
}
