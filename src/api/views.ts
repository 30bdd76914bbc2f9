import type { Collected, Skipped } from '../jobs/collect.js';
import type { JobSpec } from '../jobs/spec.js';
import type { ExecutionResponse } from '../runner/index.js';
import type { Usage, Violation } from '../sandbox/types.js';
import type { ExecutionRecord } from '../store/executions.js';
import type { JobRecord } from '../store/jobs.js';
import type { TaskRecord } from '../store/tasks.js';
import { resourceUsage } from './schemas.js';

/**
 * What GET /executions/{id}, GET /tasks/{id} and GET /jobs/{id} answer, from the stored record. One
 * function per resource, shared by the routes and by webhook deliveries, which post exactly this.
 */

export function executionView(record: ExecutionRecord) {
  return {
    request_id: record.requestId,
    status: record.status,
    language: record.language,
    created_at: record.createdAt,
    started_at: record.startedAt,
    finished_at: record.finishedAt,
    response: record.response as ExecutionResponse | null,
  };
}

export function taskView(task: TaskRecord) {
  return {
    task_id: task.taskId,
    title: task.title,
    status: task.status,
    result: task.status === 'succeeded' ? task.result : null,
    error: task.error,
    usage: resourceUsage.nullable().parse(task.usage),
    logs: task.logs,
    validation_id: task.validationId,
    attempts: task.attempts,
    created_at: task.createdAt,
    started_at: task.startedAt,
    finished_at: task.finishedAt,
  };
}

export function jobView(job: JobRecord) {
  const spec = job.spec as JobSpec;
  const usage = job.usage as Usage | null;
  return {
    id: job.id,
    status: job.status,
    command: job.command,
    argv: spec.argv,
    environment: Object.keys(spec.env),
    timeout: spec.limits.timeoutMs / 1000,
    resources: { cpu: spec.limits.cpus, memory: spec.limits.memoryBytes, disk: spec.limits.diskBytes },
    network: {
      outbound: spec.network.outbound,
      allowed_hosts: spec.network.allowedHosts,
      blocked_ports: spec.network.blockedPorts,
    },
    verdict: job.verdict,
    exit_code: job.exitCode,
    signal: job.signal,
    error: job.error,
    usage: usage
      ? { cpu_time: usage.cpuMs / 1000, peak_memory: usage.peakMemoryBytes, wall_time: usage.wallMs / 1000 }
      : null,
    violations: (job.violations ?? []) as Violation[],
    artifacts: (job.artifacts ?? []) as Collected[],
    skipped: (job.skipped ?? []) as Skipped[],
    attempts: job.attempts,
    cancel_requested: job.cancelRequested,
    created_at: job.createdAt,
    preparing_at: job.preparingAt,
    running_at: job.runningAt,
    collecting_at: job.collectingAt,
    finished_at: job.finishedAt,
    logs: `/jobs/${job.id}/logs`,
  };
}
