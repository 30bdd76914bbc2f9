import { randomUUID } from 'node:crypto';
import { chmod, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Job } from 'bullmq';
import { validateKey, type ArtifactStore } from '../artifacts/index.js';
import { jobViolationEvent } from '../audit/events.js';
import { executeJob, jobOutcome } from '../jobs/execute.js';
import { startEgressProxy, type EgressProxy } from '../jobs/proxy.js';
import { LogLines } from '../jobs/log-lines.js';
import { outputBase, prepareOutputBase, removeOrphanOutputDirs } from '../jobs/outdir.js';
import type { JobFile, JobSpec } from '../jobs/spec.js';
import type { JobMessage, JobsQueue } from '../queue/jobs.js';
import {
  advanceJob,
  appendLogs,
  claimJob,
  deleteJob,
  expiredJobs,
  finishJob,
  getJob,
  jobControl,
  nextLogSeq,
  staleJobs,
  type JobEnd,
  type JobRecord,
} from '../store/jobs.js';
import { limitsRunning, tenantQuotas } from '../config/quotas.js';
import type { Role, WorkerContext } from './role.js';

/**
 * The job worker (SPEC §7): claims a job, runs its command in a fresh sandbox with the job's files,
 * limits and /out, stores its output line by line while it runs (for live logs), then its artifacts,
 * and ends it. Only Warden's own failures are retried (a sandbox error, a worker that died); the
 * command's exit status never is. Every write is fenced by the claim token, and a worker that finds
 * its claim gone (presumed dead, the job handed on) kills its sandbox within one poll.
 */

/** Warden failed under the job (a sandbox error, a lost claim): worth another attempt. */
class WardenFailure extends Error {}

export function jobRole(ctx: WorkerContext, queue: JobsQueue, artifacts: ArtifactStore): Role {
  const { config, engine, store, audit, metrics, logger } = ctx;
  const db = store.db;
  const jobsConfig = config.jobs;
  const base = outputBase(config.dataDir);
  prepareOutputBase(base);
  const orphans = removeOrphanOutputDirs(base);
  if (orphans.length > 0) logger.warn({ removed: orphans }, 'removed job output dirs of a crashed worker');

  /** Jobs running now, each with what stops its sandbox (a worker shutting down uses it). */
  const running = new Set<() => void>();

  async function finish(job: JobRecord, token: string | null, end: JobEnd): Promise<void> {
    if (!(await finishJob(db, job.id, token, end))) return;
    await ctx.webhooks.finished('job', job.id);
    const seconds = (Date.now() - Date.parse(job.createdAt)) / 1000;
    metrics.observeJob(end.status, seconds);
    logger.info({ jobId: job.id, status: end.status, seconds }, 'job finished');
  }

  async function run(job: JobRecord, token: string): Promise<void> {
    const spec = job.spec as JobSpec;
    const files = (job.files ?? []) as JobFile[];
    const log = new LogLines(await nextLogSeq(db, job.id), jobsConfig.maxLogBytes, jobsConfig.maxLogLines);
    if (job.attempts > 1)
      log.note(`Warden started the job again (attempt ${job.attempts}): its previous worker stopped`);
    const controller = new AbortController();
    let cancelled = false;
    let lost = false;
    let interrupted = false;
    const interrupt = () => {
      interrupted = true;
      controller.abort();
    };
    running.add(interrupt);

    // One flush at a time: lines in seq order, and a slow store does not stack writes up.
    let flushing: Promise<void> = Promise.resolve();
    const flush = () =>
      (flushing = flushing.then(async () => {
        await appendLogs(db, job.id, log.take());
        const control = await jobControl(db, job.id, token);
        if (!control.held) lost = true;
        else if (control.cancel) cancelled = true;
        if ((lost || cancelled) && !controller.signal.aborted) controller.abort();
      }));
    const timer = setInterval(() => {
      flush().catch((err: Error) => {
        // A stale worker's lines collide with its successor's: the job is not ours any more.
        logger.warn({ jobId: job.id, err: err.message }, 'cannot store job logs; stopping the run');
        lost = true;
        controller.abort();
      });
    }, jobsConfig.pollMs);

    let execution;
    let proxy: EgressProxy | undefined;
    // Named like the output dirs, so a crashed worker's leftovers are swept the same way.
    const proxyDir = join(base, `${process.pid}-${job.id}-egress`);
    try {
      if (spec.network.outbound) {
        // Searchable, not listable: the proxy's socket dir inside is the run's alone.
        await mkdir(proxyDir, { mode: 0o711 });
        await chmod(proxyDir, 0o711);
        proxy = await startEgressProxy({
          jobId: job.id,
          dir: proxyDir,
          allowedHosts: spec.network.allowedHosts,
          blockedPorts: spec.network.blockedPorts,
          allowPrivate: jobsConfig.network.allowPrivate,
          onConnection: (event) => {
            metrics.observeEgress(event.allowed);
            const entry = {
              jobId: event.jobId,
              user: job.owner,
              host: event.host,
              port: event.port,
              address: event.address,
              reason: event.reason,
            };
            if (event.allowed) logger.info({ egress: 'allowed', ...entry }, 'job connection allowed');
            else {
              logger.warn({ egress: 'refused', ...entry }, 'job connection refused');
              audit.record({
                tenant: job.owner,
                actor: job.owner,
                action: 'job.connection_refused',
                target: job.id,
                outcome: 'refused',
                details: {
                  host: event.host,
                  port: event.port,
                  address: event.address ?? null,
                  reason: event.reason ?? null,
                },
              });
            }
          },
        });
      }
      execution = await executeJob(
        engine,
        { id: job.id, spec, files },
        {
          config: jobsConfig,
          outputBase: base,
          network: proxy,
          onCleanupError: (err) =>
            logger.warn({ jobId: job.id, err: err.message }, 'cannot remove a job output dir'),
          signal: controller.signal,
          onOutput: (stream, chunk) => log.push(stream, chunk),
          onStep: async (step) => {
            if (!(await advanceJob(db, job.id, token, step))) {
              lost = true;
              controller.abort();
            }
          },
          acceptsName: (path) => {
            try {
              validateKey(`jobs/${job.id}/${path}`);
              return true;
            } catch {
              return false;
            }
          },
          sink: async (path, body, size) => {
            if (lost) throw new WardenFailure('the job was taken over by another worker');
            await artifacts.put(validateKey(`jobs/${job.id}/${path}`), body, size);
            metrics.observeArtifactBytes(size);
          },
        },
      );
    } catch (err) {
      // A worker that lost the job must not retry it: its retry would take the claim back.
      if (!lost) throw err;
    } finally {
      running.delete(interrupt);
      clearInterval(timer);
      await flushing.catch(() => {});
      await proxy?.close();
      if (spec.network.outbound) await rm(proxyDir, { recursive: true, force: true });
    }
    if (lost || !execution) {
      logger.warn({ jobId: job.id }, 'another worker holds the job now; leaving it');
      return;
    }
    log.end();
    const { result } = execution;
    if (interrupted && !cancelled) {
      log.note('the worker stopped before the job ended: it runs again on another worker');
      await appendLogs(db, job.id, log.take());
      throw new WardenFailure('the worker stopped before the job ended');
    }
    if (result.status === 'error' && !cancelled) throw new WardenFailure(result.error ?? 'sandbox error');
    const outcome = jobOutcome(result, cancelled, spec);
    const violation = jobViolationEvent(job, result.violations);
    if (violation) audit.record(violation);
    log.note(`job ${outcome.status}${outcome.error ? `: ${outcome.error}` : ''}`);
    await appendLogs(db, job.id, log.take());
    await finish(job, token, {
      status: outcome.status,
      error: outcome.error,
      verdict: result.status,
      exitCode: result.exitCode,
      signal: result.signal,
      usage: result.usage,
      violations: result.violations,
      artifacts: execution.artifacts,
      skipped: execution.skipped,
    });
  }

  async function sweepExpired(): Promise<void> {
    const before = new Date(Date.now() - jobsConfig.retention).toISOString();
    for (const id of await expiredJobs(db, before)) {
      await artifacts.deletePrefix(`jobs/${id}`);
      await deleteJob(db, id);
      logger.info({ jobId: id }, 'job expired: its row, logs and artifacts are deleted');
    }
  }

  /** Claims the job and runs it (under its tenant's slot when quotas.maxRunning applies). */
  async function take(bull: Job<JobMessage>): Promise<void> {
    const token = randomUUID();
    // Taken: its place among the waiting jobs is free (a retry holds none).
    queue.admission
      .release(bull.data.job_id)
      .catch((err: Error) => logger.warn({ err: err.message }, 'queue admission'));
    const job = await claimJob(db, bull.data.job_id, token);
    // Finished, cancelled while queued (by the API: its callback is queued here), or withdrawn.
    if (!job) return ctx.webhooks.finished('job', bull.data.job_id);
    if (job.cancelRequested)
      return finish(job, token, { status: 'cancelled', error: 'cancelled by request' });
    if (job.attempts > jobsConfig.maxAttempts) {
      return finish(job, token, {
        status: 'error',
        error: `Warden could not run the job: it was interrupted ${jobsConfig.maxAttempts} times; submit it again`,
      });
    }
    try {
      await run(job, token);
    } catch (err) {
      const attempts = bull.opts.attempts ?? 1;
      if (bull.attemptsMade + 1 < attempts && job.attempts < jobsConfig.maxAttempts) throw err;
      logger.error({ jobId: job.id, err }, 'job failed on its last attempt');
      await finish(job, token, {
        status: 'error',
        error: `Warden could not run the job: ${(err as Error).message}`,
      });
    }
  }

  // A tenant at quotas.maxRunning: its job waits this long in the queue before it is tried again.
  const slots = queue.runningSlots({
    staleMs: jobsConfig.maxLimits.timeoutSeconds * 1000 + jobsConfig.shutdownGraceMs + 60_000,
    retryMs: 250,
  });

  return {
    name: 'jobs',
    queue: queue.name,
    lockMs: jobsConfig.jobLockMs,
    maxStalledCount: jobsConfig.maxAttempts,
    graceMs: jobsConfig.shutdownGraceMs + 30_000,
    stopping() {
      // After the grace, running sandboxes stop; their jobs fail this attempt and run again elsewhere.
      setTimeout(() => {
        for (const stop of running) stop();
      }, jobsConfig.shutdownGraceMs).unref();
    },
    async process(bull: Job<JobMessage>, lock?: string): Promise<void> {
      if (!limitsRunning(config.quotas)) return take(bull);
      const owner = (await getJob(db, bull.data.job_id))?.owner;
      if (!owner) return take(bull); // gone: nothing will run
      const { maxRunning } = tenantQuotas(config.quotas, config.server.maxQueueDepth, owner);
      return slots.run(bull, lock, owner, maxRunning, () => take(bull));
    },
    async recover() {
      const before = new Date(Date.now() - Math.min(config.tasks.recoveryIntervalMs, 30_000)).toISOString();
      for (const job of await staleJobs(db, before)) {
        if (await queue.ensure(job.id, { job_id: job.id })) {
          logger.warn({ jobId: job.id, status: job.status }, 'queued again a job whose queue entry was lost');
        }
      }
      await queue.releaseStale(Date.parse(before));
      await sweepExpired();
    },
  };
}
