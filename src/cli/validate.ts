import { analyze, CodeTooLargeError } from '../analysis/index.js';
import { formatReport } from '../analysis/report.js';
import { EXIT, UsageError, readConfig, readSource } from './common.js';

/** `warden validate`: 0 safe, 3 rejected, 2 bad usage (including code over the size limit). */
export async function validateCommand(
  file: string,
  opts: { config?: string; lang?: string; json?: boolean },
): Promise<number> {
  const config = readConfig(opts.config);
  const { code, language } = readSource(file, opts.lang);
  let report;
  try {
    report = await analyze(code, language.analysis, config.analysis);
  } catch (err) {
    if (err instanceof CodeTooLargeError) throw new UsageError(err.message);
    throw err;
  }
  if (opts.json) {
    process.stdout.write(
      `${JSON.stringify({ safe: report.safe, language: language.id, violations: report.findings, rejected: report.rejected.length })}\n`,
    );
  } else {
    process.stdout.write(`${formatReport(report)}\n`);
  }
  return report.safe ? EXIT.ok : EXIT.rejected;
}
