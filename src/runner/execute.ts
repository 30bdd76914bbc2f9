import { analyze, type AnalysisPolicy, type AnalysisReport } from '../analysis/index.js';
import { buildRun, CompileError, type Language } from '../languages/index.js';
import { resultWithoutRun, type Engine } from '../sandbox/engine.js';
import type { BackendName, Limits, RunResult } from '../sandbox/types.js';

/**
 * One submission's way through Warden: static analysis first (rejected code never reaches a
 * sandbox), then one sandboxed run. Shared by the CLI and the queue workers.
 */

export interface ExecuteRequest {
  language: Language;
  code: string;
  stdin?: string;
  limits?: Partial<Limits>;
  network?: boolean;
  backend?: BackendName;
  /** false skips static analysis (CLI `--no-analysis`). */
  analysis?: boolean;
  /** Extra files beside the program and another entry point (task handlers' harness). */
  extraFiles?: Record<string, string>;
  main?: string;
}

export interface ExecuteOutcome {
  analysis: AnalysisReport | null;
  result: RunResult;
}

export interface RunnerDeps {
  engine: Engine;
  policy: Partial<AnalysisPolicy>;
}

/** Throws CodeTooLargeError (from analysis) for oversized code: a user error to report as such. */
export async function executeCode(deps: RunnerDeps, req: ExecuteRequest): Promise<ExecuteOutcome> {
  const report = req.analysis === false ? null : await analyze(req.code, req.language.analysis, deps.policy);
  if (report && !report.safe) {
    const summary = report.rejected.map((f) => `line ${f.line}: ${f.message}`).join('\n');
    return {
      analysis: report,
      result: resultWithoutRun(req.backend ?? deps.engine.defaultBackend, 'security_violation', {
        stderr: `rejected by static analysis:\n${summary}\n`,
      }),
    };
  }
  let spec;
  try {
    spec = await buildRun(req.language, req.code, {
      stdin: req.stdin,
      limits: req.limits,
      extraFiles: req.extraFiles,
      main: req.main,
    });
  } catch (err) {
    if (err instanceof CompileError) {
      return {
        analysis: report,
        result: resultWithoutRun(req.backend ?? deps.engine.defaultBackend, 'failed', {
          stderr: `${err.message}\n`,
        }),
      };
    }
    throw err;
  }
  const result = await deps.engine.run(
    { ...spec, network: req.network ? { enabled: true } : undefined },
    { backend: req.backend },
  );
  return { analysis: report, result };
}
