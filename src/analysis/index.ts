/**
 * Static security analysis of untrusted source code (SPEC §4).
 *
 * Pure: source text in, findings out. The code is parsed with tree-sitter and never executed.
 */
import type { Node } from 'web-tree-sitter';
import { Collector, type AnalysisInput } from './common.js';
import { analyzeJavaScript } from './grammars/javascript.js';
import { getParser, loadParsers } from './parser.js';
import { analyzePython } from './grammars/python.js';
import { findSyntaxError } from './syntax.js';
import { ruleAction } from './rules.js';
import {
  CodeTooLargeError,
  DEFAULT_POLICY,
  LANGUAGES,
  PROFILES,
  SEVERITIES,
  type AnalysisLanguage,
  type AnalysisProfile,
  type AnalysisPolicy,
  type AnalysisReport,
  type Finding,
  type Severity,
} from './types.js';

export { RULES, ruleAction, type RuleAction } from './rules.js';
export { CodeTooLargeError, DEFAULT_POLICY, PROFILES };
export type { AnalysisLanguage, AnalysisPolicy, AnalysisProfile, AnalysisReport, Finding, Severity };

function resolvePolicy(policy: Partial<AnalysisPolicy> | undefined): AnalysisPolicy {
  const merged: AnalysisPolicy = { ...DEFAULT_POLICY };
  // Explicit undefined values (common when a policy is built from optional config) keep the default.
  if (policy?.profile !== undefined) merged.profile = policy.profile;
  if (policy?.rejectAt !== undefined) merged.rejectAt = policy.rejectAt;
  if (policy?.maxCodeChars !== undefined) merged.maxCodeChars = policy.maxCodeChars;
  if (policy?.maxLiteralRange !== undefined) merged.maxLiteralRange = policy.maxLiteralRange;
  if (!PROFILES.includes(merged.profile)) {
    throw new RangeError(`invalid profile: ${String(merged.profile)}`);
  }
  if (!SEVERITIES.includes(merged.rejectAt)) {
    throw new RangeError(`invalid rejectAt severity: ${String(merged.rejectAt)}`);
  }
  if (!(merged.maxCodeChars >= 0)) throw new RangeError(`invalid maxCodeChars: ${merged.maxCodeChars}`);
  if (!(merged.maxLiteralRange >= 0))
    throw new RangeError(`invalid maxLiteralRange: ${merged.maxLiteralRange}`);
  return merged;
}

function compareFindings(a: Finding, b: Finding): number {
  return a.line - b.line || a.column - b.column || (a.rule < b.rule ? -1 : a.rule > b.rule ? 1 : 0);
}

/**
 * The findings of the one walk over an already parsed tree of `code`, sorted by position. Exported
 * for the benchmark, which feeds it trees from other tree-sitter bindings (same node API).
 */
export function analyzeTree(
  root: Node,
  code: string,
  language: AnalysisLanguage,
  policy: AnalysisPolicy,
): Finding[] {
  const out = new Collector();
  const input: AnalysisInput = { src: code, policy, out };
  const syntaxError = findSyntaxError(root, code);
  if (syntaxError) out.add('syntax_error', syntaxError.node, syntaxError.message);
  if (language === 'python') analyzePython(root, input);
  else analyzeJavaScript(root, input);
  return out.findings.sort(compareFindings);
}

/**
 * Analyses `code` written in `language`.
 *
 * @throws CodeTooLargeError when the code is longer than `policy.maxCodeChars` (checked before parsing).
 * @throws RangeError for an unknown language or an invalid policy.
 */
export async function analyze(
  code: string,
  language: AnalysisLanguage,
  policy?: Partial<AnalysisPolicy>,
): Promise<AnalysisReport> {
  const effective = resolvePolicy(policy);
  if (code.length > effective.maxCodeChars) throw new CodeTooLargeError(code.length, effective.maxCodeChars);
  if (!LANGUAGES.includes(language)) throw new RangeError(`unsupported language: ${String(language)}`);

  const parser = await getParser(language);
  // Timed from here so that the one-off grammar load is not billed to the first analysis.
  const started = performance.now();
  const tree = parser.parse(code);
  if (!tree) throw new Error(`tree-sitter returned no tree for ${language} code`);
  let findings: Finding[];
  try {
    findings = analyzeTree(tree.rootNode, code, language, effective);
  } finally {
    // Trees live in wasm memory, which the JavaScript garbage collector does not see.
    tree.delete();
  }

  const rejected = findings.filter((f) => ruleAction(f.rule, f.severity, effective) === 'reject');
  return {
    safe: rejected.length === 0,
    language,
    findings,
    rejected,
    durationMs: performance.now() - started,
  };
}

/** Loads the tree-sitter runtime and every grammar; later calls (and analyses) reuse them. */
export async function warmUp(): Promise<void> {
  await loadParsers();
}
