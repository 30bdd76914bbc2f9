import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { CommandAllowList } from '../../jobs/command.js';
import { JobRequestError, prepareJob } from '../../jobs/spec.js';
import { openJobsQueue, type JobsQueue } from '../../queue/jobs.js';
import {
  deleteJob,
  getJob,
  insertJob,
  listJobs,
  readLogs,
  requestCancel,
  UNFINISHED_JOB,
  type JobRecord,
  type LogLine,
} from '../../store/jobs.js';
import type { Collected } from '../../jobs/collect.js';
import { decodeCursor, encodeCursor } from '../cursor.js';
import { requestActor } from '../../audit/events.js';
import { codeHash } from '../../store/audit.js';
import { admitOrRefuse, holdingPlace } from '../admission.js';
import { acceptCallback } from '../callback.js';
import { jobWithinTenant } from '../tenant-limits.js';
import type { AppDeps } from '../deps.js';
import { jobView } from '../views.js';
import { ApiError, storeGuard, UnavailableError } from '../errors.js';
import { errorBody, errors } from '../schemas.js';
import {
  artifactLinks,
  jobAccepted,
  jobCancelled,
  jobCreateRequest,
  jobIdParams,
  jobList,
  jobListQuery,
  jobRecord,
  logQuery,
} from '../schemas/jobs.js';
import { requestTenant } from '../tenant.js';

/**
 * Jobs (SPEC §7): this layer checks a job, records it and enqueues it; job workers run it. Live logs
 * are read from the store, which the worker appends to while the job runs: an SSE reader polls it
 * every `jobs.pollMs` for lines past the last one it sent. Polling the store rather than Redis
 * pub/sub keeps one source of truth for live, replayed and resumed logs alike (a line is an event
 * with its seq as id), works across API and worker processes and machines, and costs one indexed
 * query per reader per poll.
 */

const KEEPALIVE_MS = 15_000;
const LOG_BATCH = 1000;

function sseEvent(line: LogLine): string {
  return `id: ${line.seq}\ndata: ${JSON.stringify({ stream: line.stream, line: line.line, time: line.time })}\n\n`;
}

export const jobRoutes =
  (deps: AppDeps, options: { queue?: JobsQueue } = {}): FastifyPluginAsyncZod =>
  async (app) => {
    const { config, store, logger } = deps;
    const db = store.db;
    const jobs = config.jobs;
    const retryAfter = config.server.retryAfterSeconds;
    const allowList = new CommandAllowList(jobs.allowedCommands);
    const redisUrl = config.queue.redisUrl;
    let queue = options.queue;
    if (!queue) {
      if (!redisUrl) throw new Error('the jobs API needs queue.redisUrl');
      const opened = await openJobsQueue({ ...config, queue: { ...config.queue, redisUrl } }, (err) =>
        logger.warn({ err: err.message }, 'jobs queue error'),
      );
      app.addHook('onClose', () => opened.close());
      queue = opened;
    }
    const jobsQueue = queue;

    // Open log streams end when the server closes (they would hold it open otherwise).
    const streams = new Set<() => void>();
    app.addHook('preClose', async () => {
      for (const stop of streams) stop();
    });

    const stored = storeGuard(retryAfter);

    const ownJob = async (req: FastifyRequest, id: string): Promise<JobRecord> => {
      const user = requestTenant(req);
      const job = await stored(() => getJob(db, id), req.log);
      if (!job || job.owner !== user)
        throw new ApiError(404, 'not_found', `no job ${JSON.stringify(id)}`, 'id');
      return job;
    };

    app.post(
      '/jobs',
      {
        config: { scope: 'jobs' },
        bodyLimit: jobs.maxRequestBytes,
        schema: {
          summary: 'Run a command with files, environment and limits in a sandbox',
          description: `Answers 202 at once; a job worker runs it. Programs allowed here: ${allowList.names().join(', ')}. Files land under /box (the working dir); regular files the command leaves under /out become artifacts.`,
          body: jobCreateRequest,
          response: { 202: jobAccepted, ...errors(400, 413, 415, 429, 503) },
        },
      },
      async (req, reply) => {
        const user = requestTenant(req);
        let prepared;
        try {
          prepared = prepareJob(req.body, jobs, allowList);
        } catch (err) {
          if (err instanceof JobRequestError)
            throw new ApiError(400, 'invalid_request', `${err.field}: ${err.message}`, err.field);
          throw err;
        }
        const { timeout, resources } = req.body;
        prepared = {
          ...prepared,
          spec: {
            ...prepared.spec,
            limits: jobWithinTenant(config, user, prepared.spec.limits, {
              timeout: timeout !== undefined,
              cpu: resources?.cpu !== undefined,
              memory: resources?.memory !== undefined,
            }),
          },
        };
        const callback = await acceptCallback(deps, req, req.body.callback_url);
        if (deps.shutdown?.aborted)
          throw new UnavailableError('service', retryAfter, 'the service is shutting down');
        const id = req.id;
        await admitOrRefuse(config, jobsQueue.admission, [id], user, 'jobs');
        await holdingPlace(jobsQueue.admission, id, async () => {
          await stored(
            () =>
              insertJob(db, {
                id,
                owner: user,
                command: req.body.command,
                spec: prepared.spec,
                files: prepared.files,
              }),
            req.log,
          );
          try {
            await callback?.save('job', id);
            await jobsQueue.enqueue(id, { job_id: id });
          } catch (err) {
            await deleteJob(db, id).catch(() => {});
            throw err;
          }
        });
        deps.audit.record({
          tenant: user,
          actor: requestActor(req),
          action: 'job.created',
          target: id,
          outcome: 'queued',
          // The program, not its arguments: a command line may carry a token (curl -H …).
          details: {
            program: prepared.spec.argv[0] ?? '',
            arguments: prepared.spec.argv.length - 1,
            command_sha256: codeHash(req.body.command),
            environment: Object.keys(prepared.spec.env),
            files: prepared.files.length,
            outbound: prepared.spec.network.outbound,
            allowed_hosts: prepared.spec.network.allowedHosts,
          },
        });
        const poll = `/jobs/${id}`;
        return reply
          .code(202)
          .header('location', poll)
          .send({ id, status: 'queued' as const, poll, logs: `${poll}/logs` });
      },
    );

    app.get(
      '/jobs',
      {
        config: { scope: 'jobs' },
        schema: {
          summary: 'Your jobs, newest first',
          querystring: jobListQuery,
          response: { 200: jobList, ...errors(400, 503) },
        },
      },
      async (req) => {
        const user = requestTenant(req);
        const { status, limit, cursor } = req.query;
        const after = cursor ? decodeCursor(cursor) : undefined;
        const page = await stored(() => listJobs(db, { owner: user, status, limit, after }), req.log);
        return {
          jobs: page.jobs.map((j) => ({
            id: j.id,
            status: j.status,
            command: j.command,
            exit_code: j.exitCode,
            created_at: j.createdAt,
            finished_at: j.finishedAt,
          })),
          next_cursor: page.next ? encodeCursor(page.next) : null,
        };
      },
    );

    app.get(
      '/jobs/:id',
      {
        config: { scope: 'jobs' },
        schema: {
          summary: 'State of a job: each step’s time, exit code, usage, violations, artifacts',
          params: jobIdParams,
          response: { 200: jobRecord, ...errors(400, 404, 503) },
        },
      },
      async (req) => jobView(await ownJob(req, req.params.id)),
    );

    app.delete(
      '/jobs/:id',
      {
        config: { scope: 'jobs' },
        schema: {
          summary: 'Cancel a queued or running job',
          description:
            'A queued job is cancelled at once (200). A running one is flagged (202): its worker kills the sandbox within moments, keeps the log and the outputs so far, and ends it as `cancelled`. A finished job is a 409.',
          params: jobIdParams,
          response: {
            200: jobCancelled,
            202: jobCancelled,
            409: errorBody.describe('The job has already finished.'),
            ...errors(400, 404, 503),
          },
        },
      },
      async (req, reply) => {
        const job = await ownJob(req, req.params.id);
        if (!UNFINISHED_JOB.includes(job.status)) {
          throw new ApiError(409, 'job_finished', `the job has already finished (${job.status})`, 'id');
        }
        const after = (await stored(() => requestCancel(db, job.id), req.log)) ?? job;
        deps.audit.record({
          tenant: job.owner,
          actor: requestActor(req),
          action: 'job.cancelled',
          target: job.id,
          outcome: after.status,
          details: { was: job.status },
        });
        return reply
          .code(after.status === 'cancelled' ? 200 : 202)
          .send({ id: after.id, status: after.status, cancel_requested: after.cancelRequested });
      },
    );

    app.get(
      '/jobs/:id/artifacts',
      {
        config: { scope: 'jobs' },
        schema: {
          summary: 'Download links of a job’s artifacts (signed, expiring)',
          params: jobIdParams,
          response: { 200: artifactLinks, ...errors(400, 404, 503) },
        },
      },
      async (req) => {
        const job = await ownJob(req, req.params.id);
        const store = deps.artifacts;
        const collected = (job.artifacts ?? []) as Collected[];
        if (collected.length === 0) return [];
        if (!store) throw new UnavailableError('service', retryAfter, 'the artifact store is not configured');
        const expiresAt = new Date(Date.now() + jobs.artifacts.urlTtlSeconds * 1000);
        const origin = `${req.protocol}://${req.host}`;
        return Promise.all(
          collected.map(async (a) => {
            const url = await store.signedUrl(`jobs/${job.id}/${a.path}`, expiresAt);
            return {
              ...a,
              url: url.startsWith('/') ? `${origin}${url}` : url,
              expires_at: expiresAt.toISOString(),
            };
          }),
        );
      },
    );

    app.get(
      '/jobs/:id/logs',
      {
        config: { scope: 'jobs' },
        schema: {
          summary: 'A job’s output, live (Server-Sent Events) or as plain text',
          description:
            'Server-Sent Events: one event per output line, `data: {"stream","line","time"}`, `id:` its sequence number; live while the job runs, replayed from the start for a finished job, then an `end` event with the final status. `Last-Event-ID` (or `last_event_id`) resumes after that line. `?format=text` gives the log so far as text/plain.',
          params: jobIdParams,
          querystring: logQuery,
          response: {
            200: z.string().describe('text/event-stream (default) or text/plain (`?format=text`).'),
            ...errors(400, 404, 503),
          },
        },
      },
      async (req, reply) => {
        const job = await ownJob(req, req.params.id);
        if (req.query.format === 'text') return sendText(job, reply, req.log);
        const header = req.headers['last-event-id'];
        const fromHeader =
          typeof header === 'string' && /^\d{1,15}$/.test(header) ? Number(header) : undefined;
        const after = req.query.last_event_id ?? fromHeader ?? 0;
        return streamEvents(job, after, req, reply);
      },
    );

    async function sendText(job: JobRecord, reply: FastifyReply, log: FastifyBaseLogger) {
      const parts: string[] = [];
      let after = 0;
      for (;;) {
        const lines = await stored(() => readLogs(db, job.id, after, LOG_BATCH), log);
        for (const l of lines) parts.push(l.stream === 'system' ? `[warden] ${l.line}\n` : `${l.line}\n`);
        if (lines.length < LOG_BATCH) break;
        after = lines[lines.length - 1]!.seq;
      }
      return reply.type('text/plain; charset=utf-8').send(parts.join(''));
    }

    function streamEvents(job: JobRecord, from: number, req: FastifyRequest, reply: FastifyReply) {
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
        'x-request-id': req.id,
      });
      let open = true;
      let wake: (() => void) | undefined;
      const stop = () => {
        open = false;
        wake?.();
      };
      streams.add(stop);
      req.raw.once('close', stop);
      const pause = (ms: number) =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, ms);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      const write = (text: string) =>
        new Promise<void>((resolve) => (res.write(text) ? resolve() : res.once('drain', resolve)));

      void (async () => {
        let after = from;
        let lastSent = Date.now();
        try {
          await write('retry: 1000\n\n');
          while (open) {
            const lines = await readLogs(db, job.id, after, LOG_BATCH);
            for (const line of lines) {
              if (!open) break;
              await write(sseEvent(line));
              after = line.seq;
              lastSent = Date.now();
            }
            if (lines.length === LOG_BATCH) continue;
            // Read the status after the lines: a job that ended has stored its last line by then.
            const now = await getJob(db, job.id);
            if (!now || !UNFINISHED_JOB.includes(now.status)) {
              const rest = await readLogs(db, job.id, after, LOG_BATCH);
              if (rest.length > 0) continue;
              await write(`event: end\ndata: ${JSON.stringify({ status: now?.status ?? 'gone' })}\n\n`);
              break;
            }
            if (Date.now() - lastSent > KEEPALIVE_MS) {
              await write(': keep-alive\n\n');
              lastSent = Date.now();
            }
            await pause(jobs.pollMs);
          }
        } catch (err) {
          req.log.warn({ jobId: job.id, err: (err as Error).message }, 'job log stream ended early');
        } finally {
          streams.delete(stop);
          res.end();
        }
      })();
      return reply;
    }
  };
