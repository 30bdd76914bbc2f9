import { readFileSync } from 'node:fs';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { LANGUAGES } from '../../languages/index.js';
import { WORKER_ROLES } from '../../queue/heartbeats.js';
import { describeAuth } from '../auth.js';
import type { AppDeps } from '../deps.js';
import { healthResponse, serviceInfo } from '../schemas.js';

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
  version: string;
  description: string;
};

/** A dependency check that cannot hang /health: a slow answer counts as a failed one. */
async function timed<T>(
  work: () => Promise<T>,
  ms = 2000,
): Promise<{ value?: T; error?: string; latency: number }> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const value = await Promise.race([
      work(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
      }),
    ]);
    return { value, latency: Math.round((performance.now() - started) * 100) / 100 };
  } catch (err) {
    return { error: (err as Error).message, latency: performance.now() - started };
  } finally {
    clearTimeout(timer);
  }
}

export const serviceRoutes =
  (deps: AppDeps): FastifyPluginAsyncZod =>
  async (app) => {
    const { config } = deps;

    app.get(
      '/',
      {
        config: { scope: 'public' },
        schema: { summary: 'Service information', response: { 200: serviceInfo } },
      },
      async () => ({
        name: 'warden',
        version: pkg.version,
        description: pkg.description,
        documentation: '/docs',
        openapi: '/docs/json',
        default_backend: config.sandbox.backend,
        languages: Object.keys(LANGUAGES),
        endpoints: [
          'POST /execute',
          'GET /executions',
          'GET /executions/{request_id}',
          'POST /validate',
          'POST /tasks/upload_file',
          'GET /tasks/validation_status/{validation_id}',
          'GET /tasks/files',
          'POST /tasks',
          'GET /tasks/{task_id}',
          'POST /admin/keys',
          'GET /admin/keys',
          'DELETE /admin/keys/{id}',
          'GET /languages',
          'GET /languages/{language}/validate',
          'GET /health',
          'GET /metrics',
          'GET /docs',
          'GET /ui',
        ],
      }),
    );

    app.get(
      '/health',
      {
        config: { scope: 'public' },
        schema: {
          summary: 'Backend, queue, store and worker checks',
          description:
            '200 when every check passes, 503 (with Retry-After) otherwise; the body says which failed.',
          response: { 200: healthResponse, 503: healthResponse },
        },
      },
      async (_req, reply) => {
        const [probes, queue, validation, tasks, store, workers] = await Promise.all([
          deps.worker ? timed(() => deps.worker!.probe(), 5000) : undefined,
          timed(() => deps.queue.counts()),
          timed(() => deps.validations.counts()),
          timed(() => deps.tasks.counts()),
          timed(() => deps.store.ping()),
          timed(() => deps.heartbeats.live()),
        ]);
        const backends = (probes?.value ?? []).map((p) => ({
          backend: p.backend,
          available: p.available,
          isolation: p.isolation,
          detail: p.detail,
        }));
        const defaultProbe = backends.find((b) => b.backend === config.sandbox.backend);
        const backendOk = deps.worker ? (defaultProbe?.available ?? false) : true;
        const beats = workers.value ?? [];
        const roles = Object.fromEntries(
          WORKER_ROLES.map((role) => [role, beats.filter((b) => b.roles.includes(role)).length]),
        );
        const missing = WORKER_ROLES.filter((role) => roles[role] === 0);
        const queueError = queue.error ?? validation.error ?? tasks.error;
        const queues = Object.fromEntries(
          (
            [
              ['executions', queue.value],
              ['validation', validation.value],
              ['tasks', tasks.value],
            ] as const
          ).flatMap(([name, counts]) => (counts ? [[name, counts]] : [])),
        );
        const checks = {
          backend: {
            ok: backendOk,
            detail: !deps.worker
              ? 'checked by the worker processes (none in this process)'
              : (probes?.error ?? defaultProbe?.detail ?? 'not probed'),
            default: config.sandbox.backend,
            backends,
          },
          queue: {
            ok: !queueError,
            detail: queueError ?? 'redis answers',
            latency_ms: queue.error ? null : queue.latency,
            waiting: queue.value?.waiting ?? null,
            active: queue.value?.active ?? null,
            queues,
          },
          store: {
            ok: !store.error,
            detail: store.error ? `unreachable: ${store.error}` : `${deps.store.dialect} answers`,
            dialect: deps.store.dialect,
            latency_ms: store.error ? null : store.latency,
          },
          workers: {
            ok: !workers.error && missing.length === 0,
            detail: workers.error
              ? `unknown: ${workers.error}`
              : missing.length > 0
                ? `no live worker for: ${missing.join(', ')} (${beats.length} worker process(es) alive)`
                : `${beats.length} worker process(es) alive: ${WORKER_ROLES.map((r) => `${r} ${roles[r]}`).join(', ')}`,
            live: workers.error ? null : beats.length,
            in_process: deps.worker !== undefined,
            roles,
            processes: beats,
          },
        };
        const ok = Object.values(checks).every((c) => c.ok);
        if (!ok) void reply.code(503).header('retry-after', String(config.server.retryAfterSeconds));
        return {
          status: ok ? ('ok' as const) : ('degraded' as const),
          checks,
          pool: deps.worker?.poolSizes() ?? {},
          active_sandboxes: deps.worker?.engine.activeRuns() ?? 0,
          auth: { mode: config.auth.mode, detail: describeAuth(config) },
        };
      },
    );

    app.get(
      '/metrics',
      {
        // Public by default (scrapers carry no key; the series name no tenant); auth.publicMetrics: false → admin.
        config: { scope: config.auth.publicMetrics ? 'public' : 'admin' },
        schema: {
          summary: 'Prometheus metrics (text exposition format)',
          description:
            'warden_runs_total{verdict,backend,language}, warden_run_duration_seconds, warden_executions_total{status,language}, warden_security_violations_total{source,rule,language}, warden_queue_jobs{state}, warden_active_sandboxes, warden_pool_idle_sandboxes{pool}, warden_http_request_duration_seconds, and Node.js process metrics (warden_process_*, warden_nodejs_*).',
          // No response schema: the body is Prometheus text, sent as is.
        },
      },
      async (_req, reply) => {
        const text = await deps.metrics.registry.metrics();
        return reply.type(deps.metrics.registry.contentType).send(text);
      },
    );
  };
