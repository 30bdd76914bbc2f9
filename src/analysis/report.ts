import { SEVERITIES, type AnalysisReport, type Severity } from './types.js';

/**
 * Human-readable form of a report for the CLI: one line per finding
 * (`line:col severity rule message`), then a summary line.
 *
 * The report does not carry the policy: pass `rejectAt` to name the threshold in the summary;
 * without it the summary names the lowest rejected severity, which is always a true statement.
 */
export function formatReport(report: AnalysisReport, rejectAt?: Severity): string {
  const lines = report.findings.map((f) => `${f.line}:${f.column} ${f.severity} ${f.rule} ${f.message}`);
  lines.push(
    report.safe
      ? 'safe'
      : `rejected: ${countOf(report.rejected.length)} at or above ${rejectAt ?? lowest(report)}`,
  );
  return lines.join('\n');
}

function countOf(n: number): string {
  return `${n} finding${n === 1 ? '' : 's'}`;
}

function lowest(report: AnalysisReport): Severity {
  let min = SEVERITIES.length - 1;
  for (const f of report.rejected) min = Math.min(min, SEVERITIES.indexOf(f.severity));
  return SEVERITIES[min] as Severity;
}
