import { analyze, type AnalysisPolicy, type AnalysisReport, type Finding } from '../analysis/index.js';
import { LANGUAGES } from '../languages/index.js';
import type { ExecutionRequest } from './contract.js';

/**
 * The files a request brings beside its entry (a Piston request's other files), and what static
 * analysis says of them.
 */

/** The request's other files, decoded: name → bytes. */
export function extraFiles(req: ExecutionRequest): Record<string, Buffer> {
  return Object.fromEntries(
    Object.entries(req.options?.files ?? {}).map(([name, b64]) => [name, Buffer.from(b64, 'base64')]),
  );
}

/**
 * `report` (the entry's) with the findings of every other file, each analysed as the entry's
 * language: a program can load any file beside it as code (`import helper`, `require('./data.txt')`,
 * which Node runs as JavaScript whatever its extension). A file that does not parse cannot be loaded
 * as code, so its syntax error is no finding here; the program meets it at run time if it tries.
 * Each finding names its file. Throws CodeTooLargeError for a file over `policy.maxCodeChars`.
 */
export async function withExtraFiles(
  report: AnalysisReport,
  req: ExecutionRequest,
  policy: Partial<AnalysisPolicy>,
): Promise<AnalysisReport> {
  const findings: Finding[] = [];
  const rejected: Finding[] = [];
  const named = (name: string) => (f: Finding) => ({ ...f, message: `${name}: ${f.message}` });
  for (const [name, bytes] of Object.entries(extraFiles(req))) {
    const own = await analyze(bytes.toString('utf8'), LANGUAGES[req.language].analysis, policy);
    const code = (f: Finding) => f.rule !== 'syntax_error';
    findings.push(...own.findings.filter(code).map(named(name)));
    rejected.push(...own.rejected.filter(code).map(named(name)));
  }
  if (findings.length === 0) return report;
  return {
    ...report,
    safe: report.safe && rejected.length === 0,
    findings: [...report.findings, ...findings],
    rejected: [...report.rejected, ...rejected],
  };
}
