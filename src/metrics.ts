import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { AnalysisReport } from './analysis/index.js';
import type { RunResult } from './sandbox/types.js';

/**
 * Prometheus metrics of one Warden process (API and in-process workers share them). A registry of
 * its own per process object, so tests can start several servers in one process.
 */
export interface Metrics {
  readonly registry: Registry;
  /** A sandboxed run ended. */
  observeRun(language: string, result: RunResult): void;
  /** Static analysis of an execution finished (rejections count as violations). */
  observeAnalysis(language: string, report: AnalysisReport): void;
  /** An execution (all its runs) finished with this overall status. */
  observeExecution(language: string, status: string): void;
  observeHttp(method: string, route: string, statusCode: number, seconds: number): void;
  /** A task-file validation ended (VALIDATED or REJECTED). */
  observeValidation(language: string, status: string, seconds: number): void;
  /** A task ended (succeeded, failed, error). */
  observeTask(status: string): void;
  /** A job ended in this final status; `seconds` from queued to the end. */
  observeJob(status: string, seconds: number): void;
  /** Bytes a job worker stored as artifacts. */
  observeArtifactBytes(bytes: number): void;
  /** A job's egress proxy allowed or refused a connection. */
  observeEgress(allowed: boolean): void;
  /** One callback delivery attempt ended: delivered, retry (failed, tried again later) or failed (for good). */
  observeWebhook(result: 'delivered' | 'retry' | 'failed'): void;
  /** The container monitor removed `count` leftovers (containers, cgroups, leases) of a backend. */
  observeOrphans(backend: string, count: number): void;
  /** Sources read at scrape time; set by whoever owns the queue and the engine. */
  setQueueDepth(read: () => Promise<Record<string, number>>): void;
  /** `poolSizes` keyed by something short and stable (the language). */
  setEngine(read: { activeRuns(): number; poolSizes(): Record<string, number> }): void;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'warden_' });

  const runs = new Counter({
    name: 'warden_runs_total',
    help: 'Sandboxed runs by verdict, backend and language (one per test case).',
    labelNames: ['verdict', 'backend', 'language'] as const,
    registers: [registry],
  });
  const runDuration = new Histogram({
    name: 'warden_run_duration_seconds',
    help: 'Wall-clock time of sandboxed runs, from the start of the run to its end.',
    labelNames: ['backend', 'language'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
  const executions = new Counter({
    name: 'warden_executions_total',
    help: 'Finished executions (POST /execute) by overall status and language.',
    labelNames: ['status', 'language'] as const,
    registers: [registry],
  });
  const violations = new Counter({
    name: 'warden_security_violations_total',
    help: 'Security violations: static findings that rejected code, and forbidden actions caught at run time.',
    labelNames: ['source', 'rule', 'language'] as const,
    registers: [registry],
  });
  const http = new Histogram({
    name: 'warden_http_request_duration_seconds',
    help: 'HTTP requests by method, route and status code.',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });

  const validations = new Counter({
    name: 'warden_task_validations_total',
    help: 'Finished task-file validations by status (VALIDATED, REJECTED) and language.',
    labelNames: ['status', 'language'] as const,
    registers: [registry],
  });
  const validationDuration = new Histogram({
    name: 'warden_task_validation_duration_seconds',
    help: 'Time a worker spent validating one task file (analysis and the sandboxed probe run).',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const tasks = new Counter({
    name: 'warden_tasks_total',
    help: 'Finished tasks by status (succeeded, failed, error).',
    labelNames: ['status'] as const,
    registers: [registry],
  });

  const jobs = new Counter({
    name: 'warden_jobs_total',
    help: 'Finished jobs by status (completed, failed, timeout, cancelled, error).',
    labelNames: ['status'] as const,
    registers: [registry],
  });
  const jobDuration = new Histogram({
    name: 'warden_job_duration_seconds',
    help: 'Time from a job being queued to its final status.',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600],
    registers: [registry],
  });
  const egress = new Counter({
    name: 'warden_job_egress_connections_total',
    help: 'Connections jobs asked their egress proxy for, by result (allowed, refused).',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  const webhooks = new Counter({
    name: 'warden_webhook_attempts_total',
    help: 'Callback delivery attempts, by result (delivered; retry: failed and tried again later; failed: the last attempt failed or the URL was refused).',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  const orphans = new Counter({
    name: 'warden_orphans_removed_total',
    help: 'Sandbox leftovers (containers, runsc sandboxes, cgroups, uid leases) the container monitor removed, by backend.',
    labelNames: ['backend'] as const,
    registers: [registry],
  });
  const artifactBytes = new Counter({
    name: 'warden_job_artifact_bytes_total',
    help: 'Bytes of job outputs stored as artifacts.',
    registers: [registry],
  });

  let readQueue: (() => Promise<Record<string, number>>) | undefined;
  let engine: { activeRuns(): number; poolSizes(): Record<string, number> } | undefined;
  new Gauge({
    name: 'warden_queue_jobs',
    help: 'Executions in the queue by state (waiting = not yet taken by a worker).',
    labelNames: ['state'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      if (!readQueue) return;
      try {
        for (const [state, n] of Object.entries(await readQueue())) this.set({ state }, n);
      } catch {
        // Queue unreachable: no sample rather than a failed scrape; /health says why.
      }
    },
  });
  new Gauge({
    name: 'warden_active_sandboxes',
    help: 'Sandboxed runs in progress in this process.',
    registers: [registry],
    collect() {
      this.set(engine?.activeRuns() ?? 0);
    },
  });
  new Gauge({
    name: 'warden_pool_idle_sandboxes',
    help: 'Pre-started sandboxes waiting for a run, per pool.',
    labelNames: ['pool'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [key, n] of Object.entries(engine?.poolSizes() ?? {})) {
        this.set({ pool: key }, n);
      }
    },
  });

  return {
    registry,
    observeRun(language, result) {
      runs.inc({ verdict: result.status, backend: result.backend, language });
      if (result.status !== 'error')
        runDuration.observe({ backend: result.backend, language }, result.usage.wallMs / 1000);
      for (const v of result.violations) violations.inc({ source: 'runtime', rule: v.rule, language });
    },
    observeAnalysis(language, report) {
      if (report.safe) return;
      // Code that does not parse is a compile_error (counted by verdict), not a violation.
      for (const f of report.rejected.filter((r) => r.rule !== 'syntax_error'))
        violations.inc({ source: 'static', rule: f.rule, language });
    },
    observeExecution(language, status) {
      executions.inc({ status, language });
    },
    observeHttp(method, route, statusCode, seconds) {
      http.observe({ method, route, status_code: String(statusCode) }, seconds);
    },
    observeValidation(language, status, seconds) {
      validations.inc({ status, language });
      validationDuration.observe(seconds);
    },
    observeTask(status) {
      tasks.inc({ status });
    },
    observeJob(status, seconds) {
      jobs.inc({ status });
      jobDuration.observe(seconds);
    },
    observeArtifactBytes(bytes) {
      artifactBytes.inc(bytes);
    },
    observeOrphans(backend, count) {
      if (count > 0) orphans.inc({ backend }, count);
    },
    observeEgress(allowed) {
      egress.inc({ result: allowed ? 'allowed' : 'refused' });
    },
    observeWebhook(result) {
      webhooks.inc({ result });
    },
    setQueueDepth(read) {
      readQueue = read;
    },
    setEngine(read) {
      engine = read;
    },
  };
}
