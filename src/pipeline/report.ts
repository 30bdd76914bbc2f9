import type { Finding } from '../analysis/index.js';
import type { Usage } from '../sandbox/types.js';
import type { ProbeReport, ValidationOutcome } from './validate.js';

/**
 * What is kept of a validation besides its verdict and reasons, in the API's units and names (seconds,
 * bytes, snake_case) so that the stored report is served as it is.
 */

export interface ResourceUsage {
  /** Seconds. */
  cpu_time: number;
  /** Bytes. */
  peak_memory: number;
  /** Seconds. */
  wall_time: number;
}

export interface ValidationReport {
  warnings: string[];
  findings: Finding[];
  probes: ProbeReport[];
  /** Null when the file never reached a sandbox (rejected by static analysis). */
  usage: ResourceUsage | null;
  violations: { rule: string; message: string }[];
  /** The end of what the task printed while being validated. */
  logs: string;
  /** Seconds the validation took. */
  validation_time: number;
}

export function resourceUsage(usage: Usage): ResourceUsage {
  return {
    cpu_time: usage.cpuMs / 1000,
    peak_memory: usage.peakMemoryBytes,
    wall_time: usage.wallMs / 1000,
  };
}

export function validationReport(outcome: ValidationOutcome): ValidationReport {
  return {
    warnings: outcome.warnings,
    findings: outcome.findings,
    probes: outcome.probes,
    usage: outcome.usage ? resourceUsage(outcome.usage) : null,
    violations: outcome.violations.map((v) => ({ rule: v.rule, message: v.message })),
    logs: outcome.logs,
    validation_time: outcome.durationMs / 1000,
  };
}
