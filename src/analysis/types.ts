export type AnalysisLanguage = 'python' | 'javascript' | 'typescript';
export type Severity = 'low' | 'medium' | 'high' | 'critical';

/** One thing the analyser found. `line` and `column` are 1-based (column counts UTF-16 code units). */
export interface Finding {
  rule: string;
  severity: Severity;
  message: string;
  line: number;
  column: number;
}

export interface AnalysisPolicy {
  /** Findings at or above this severity make the code unsafe. */
  rejectAt: Severity;
  /** Code longer than this (in UTF-16 code units, i.e. JavaScript string length) is refused before parsing. */
  maxCodeChars: number;
  /** Literal sizes (range bounds, repetition counts, array lengths) above this count as a huge allocation. */
  maxLiteralRange: number;
}

export const DEFAULT_POLICY: AnalysisPolicy = Object.freeze({
  rejectAt: 'high',
  maxCodeChars: 50_000,
  maxLiteralRange: 10_000_000,
});

export interface AnalysisReport {
  safe: boolean;
  language: AnalysisLanguage;
  /** Sorted by line, then column. */
  findings: Finding[];
  /** The findings at or above `policy.rejectAt`. */
  rejected: Finding[];
  durationMs: number;
}

export class CodeTooLargeError extends Error {
  readonly chars: number;
  readonly limit: number;

  constructor(chars: number, limit: number) {
    super(`code is ${chars} characters; the limit is ${limit}`);
    this.name = 'CodeTooLargeError';
    this.chars = chars;
    this.limit = limit;
  }
}

export const SEVERITIES: readonly Severity[] = ['low', 'medium', 'high', 'critical'];

export function severityRank(severity: Severity): number {
  return SEVERITIES.indexOf(severity);
}

export const LANGUAGES: readonly AnalysisLanguage[] = ['python', 'javascript', 'typescript'];
