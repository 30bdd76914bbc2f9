import { fileURLToPath } from 'node:url';
import type { ExecutionResponse } from '../src/runner/index.js';
import { runBare } from './bare.js';
import { setupFacts, spawnBenchServer, type ExternalServer } from './server.js';
import { percentile, round, summary, throughput, timed } from './stats.js';

/** One `POST /execute` of `print(1)`, checked: the unit every API benchmark times. */
export async function executePrint1(url: string): Promise<ExecutionResponse> {
  const res = await fetch(`${url}/execute`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ code: 'print(1)', language: 'python' }),
  });
  const body = (await res.json()) as ExecutionResponse;
  if (res.status !== 200 || body.output !== '1\n')
    throw new Error(`execute: ${res.status} ${JSON.stringify(body)}`);
  return body;
}

/**
 * The whole service path (HTTP → SQLite → Redis queue → worker → analysis → bwrap sandbox → store →
 * HTTP) against a bare cold `python3 -c 'print(1)'`, measured in the same run, paired and interleaved.
 * The service runs in its own process, as a user runs it (the bench is an external HTTP client with
 * keep-alive), with its defaults (workers = cores, pool of 2 per language), a local redis-server and
 * SQLite in a temp data dir; a second one with the pool off gives the cold figure, a third one whose
 * engine answers at once the service's own part. The service's CPU (its process, the local
 * redis-server apart) is divided by the executions it served.
 * `WARDEN_BENCH_CPU_PROF=dir` writes a V8 CPU profile of the pooled service there.
 */

const BARE = ['/usr/bin/python3', '-c', 'print(1)'];

const bare = () => runBare(BARE);

/**
 * `rounds` alternations of a bare cold start and one `POST /execute`, timed each: medians and p95s
 * side by side, and where the request's time went (medians): the worker's share, the run itself.
 */
async function pairedWithBare(url: string, rounds: number) {
  const bareMs: number[] = [];
  const apiMs: number[] = [];
  const workerMs: number[] = [];
  const sandboxMs: number[] = [];
  for (let i = 0; i < rounds; i++) {
    bareMs.push((await timed(bare))[0]);
    const [ms, body] = await timed(() => executePrint1(url));
    apiMs.push(ms);
    workerMs.push(body.execution_time * 1000);
    sandboxMs.push(body.resource_usage.wall_time * 1000);
  }
  const api = summary(apiMs);
  const bareCold = summary(bareMs);
  return {
    requests: rounds,
    api_ms: { ...api, p50: api.median },
    bare_cold_ms: { ...bareCold, p50: bareCold.median },
    ratio_p50: round(api.median / bareCold.median),
    ratio_p95: round(api.p95 / bareCold.p95),
    worker_execution_ms: round(percentile(workerMs, 50)),
    sandbox_wall_ms: round(percentile(sandboxMs, 50)),
  };
}

/** CPU (ms) of the service and of its redis-server while `work` serves `executions` executions. */
async function cpuPerExecution(server: ExternalServer, executions: number, work: () => Promise<unknown>) {
  const before = await server.cpu();
  const [wallMs] = await timed(work);
  const after = await server.cpu();
  const per = (a: { user: number; system: number } | null, b: typeof a) =>
    a && b ? round((b.user + b.system - a.user - a.system) / executions) : null;
  return {
    executions,
    wall_ms: round(wallMs),
    service_ms: per(before.service, after.service),
    service_user_ms: round((after.service.user - before.service.user) / executions),
    service_system_ms: round((after.service.system - before.service.system) / executions),
    redis_ms: per(before.redis, after.redis),
  };
}

export async function benchApi(
  options: { sequential?: number; total?: number; cold?: number } = {},
): Promise<Record<string, unknown>> {
  const sequential = options.sequential ?? 50;
  const total = options.total ?? 100;
  const cold = options.cold ?? 30;
  const cpuProfDir = process.env.WARDEN_BENCH_CPU_PROF;
  const server = await spawnBenchServer('api', {}, { cpuProfDir });
  let pooled: Record<string, unknown>;
  try {
    pooled = await benchPooled(server, sequential, total);
  } finally {
    await server.close();
  }
  const coldServer = await spawnBenchServer('api-cold', { sandbox: { pool: { size: 0 } } });
  let poolOff: Record<string, unknown>;
  try {
    poolOff = await benchCold(coldServer, cold);
  } finally {
    await coldServer.close();
  }
  const stubServer = await spawnBenchServer('api-stub', {}, { stubEngine: true });
  let serviceOnly: Record<string, unknown>;
  try {
    serviceOnly = await benchServiceOnly(stubServer, 4 * sequential);
  } finally {
    await stubServer.close();
  }
  return { ...pooled, pool_off_print1_python: poolOff, service_only_engine_stubbed: serviceOnly };
}

async function benchPooled(server: ExternalServer, sequential: number, total: number) {
  const execute = () => executePrint1(server.url);
  for (let i = 0; i < 10; i++) await Promise.all([execute(), bare()]); // warm caches, pool, connections

  let latency: Awaited<ReturnType<typeof pairedWithBare>> | undefined;
  const cpuSequential = await cpuPerExecution(server, sequential, async () => {
    latency = await pairedWithBare(server.url, sequential);
  });

  // The Piston-compatible route takes the same path; what it adds is mapping the request and answer.
  const piston = async (): Promise<void> => {
    const res = await fetch(`${server.url}/api/v2/execute`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ language: 'python', version: '*', files: [{ content: 'print(1)' }] }),
    });
    const body = (await res.json()) as { run?: { stdout?: string } };
    if (res.status !== 200 || body.run?.stdout !== '1\n')
      throw new Error(`piston: ${res.status} ${JSON.stringify(body)}`);
  };
  const pistonMs: number[] = [];
  const executeMs: number[] = [];
  for (let i = 0; i < sequential; i++) {
    executeMs.push((await timed(execute))[0]);
    pistonMs.push((await timed(piston))[0]);
  }
  const pistonSummary = summary(pistonMs);
  const executeSummary = summary(executeMs);

  const bareRate = await throughput(total, 8, bare);
  let apiRate = 0;
  const cpuConcurrent = await cpuPerExecution(server, total, async () => {
    apiRate = await throughput(total, 8, execute);
  });

  return {
    setup: { ...setupFacts(server.config), client: 'separate process, fetch (keep-alive)' },
    latency_print1_python: latency,
    piston_print1_python: {
      requests: sequential,
      piston_ms: { ...pistonSummary, p50: pistonSummary.median },
      execute_ms: { ...executeSummary, p50: executeSummary.median },
      ratio_p50: round(pistonSummary.median / executeSummary.median),
    },
    throughput_c8: {
      requests: total,
      api_executions_per_s: apiRate,
      bare_spawns_per_s: bareRate,
      ratio: round(apiRate / bareRate),
    },
    // CPU of the service process per execution (API + worker + store + pool refills; the sandboxed
    // programs are its children and not counted), and of its redis-server apart.
    service_cpu_per_execution: { sequential: cpuSequential, concurrency_8: cpuConcurrent },
  };
}

/** Pool off: every run starts its sandbox cold, API included, against a bare cold start. */
async function benchCold(server: ExternalServer, rounds: number) {
  const execute = () => executePrint1(server.url);
  for (let i = 0; i < 5; i++) await Promise.all([execute(), bare()]);
  return pairedWithBare(server.url, rounds);
}

/**
 * The service's own part: its engine answers at once (no sandbox, no pool), so the round trip and the
 * CPU are the API's, the queue's, the store's and the worker's alone.
 */
async function benchServiceOnly(server: ExternalServer, requests: number) {
  const execute = () => executePrint1(server.url);
  for (let i = 0; i < 20; i++) await execute();
  const ms: number[] = [];
  const cpu = await cpuPerExecution(server, requests, async () => {
    for (let i = 0; i < requests; i++) ms.push((await timed(execute))[0]);
  });
  const latency = summary(ms);
  // The same after a thousand more: a service's steady state. The first few hundred executions after
  // a start also pay for V8 compiling the hot path (1.5–1.8× the CPU here; BullMQ alone shows the same fall).
  for (let i = 0; i < 1000; i++) await execute();
  const warm = await cpuPerExecution(server, requests, async () => {
    for (let i = 0; i < requests; i++) await execute();
  });
  return {
    requests,
    round_trip_ms: { ...latency, p50: latency.median },
    service_cpu_per_execution: cpu,
    service_cpu_per_execution_after_1200: warm,
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  console.log(JSON.stringify(await benchApi(), null, 2));
  process.exit(0);
}
