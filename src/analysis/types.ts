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

/**
 * How findings turn into a rejection. `strict`: importing a dangerous module rejects, and so does any
 * finding at or above `rejectAt`. `standard`: only findings at or above `rejectAt` reject (an import
 * alone warns; dangerous uses are high or critical). `off`: findings are reported, nothing rejects.
 */
export type AnalysisProfile = 'strict' | 'standard' | 'off';

export const PROFILES: readonly AnalysisProfile[] = ['strict', 'standard', 'off'];

export interface AnalysisPolicy {
  profile: AnalysisProfile;
  /** Findings at or above this severity make the code unsafe (unless the profile is `off`). */
  rejectAt: Severity;
  /** Code longer than this (in UTF-16 code units, i.e. JavaScript string length) is refused before parsing. */
  maxCodeChars: number;
  /** Literal sizes (range bounds, repetition counts, array lengths) above this count as a huge allocation. */
  maxLiteralRange: number;
}

export const DEFAULT_POLICY: AnalysisPolicy = Object.freeze({
  profile: 'strict',
  rejectAt: 'high',
  maxCodeChars: 50_000,
  maxLiteralRange: 10_000_000,
});

export interface AnalysisReport {
  safe: boolean;
  language: AnalysisLanguage;
  /** Sorted by line, then column. */
  findings: Finding[];
  /** The findings that reject the code under the policy's profile (see AnalysisProfile). */
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
