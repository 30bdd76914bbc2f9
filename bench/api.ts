import { fileURLToPath } from 'node:url';
import type { ExecutionResponse } from '../src/runner/index.js';
import { runBare } from './bare.js';
import { setupFacts, withBenchServer } from './server.js';
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
 * The whole service path (HTTP → SQLite → Redis queue → worker → analysis → pooled bwrap sandbox →
 * store → HTTP) against a bare cold `python3 -c 'print(1)'`, measured in the same run, paired and
 * interleaved. The service runs with its defaults (workers = cores, pool of 2 per language), a local
 * redis-server and SQLite in a temp data dir.
 */

const BARE = ['/usr/bin/python3', '-c', 'print(1)'];

const bare = () => runBare(BARE);

export async function benchApi(
  options: { sequential?: number; total?: number } = {},
): Promise<Record<string, unknown>> {
  const sequential = options.sequential ?? 50;
  const total = options.total ?? 100;
  return withBenchServer('api', async (server, config) => {
    const execute = () => executePrint1(server.url);

    for (let i = 0; i < 10; i++) await Promise.all([execute(), bare()]); // warm caches, pool, connections

    const apiMs: number[] = [];
    const bareMs: number[] = [];
    const workerMs: number[] = [];
    const sandboxMs: number[] = [];
    for (let i = 0; i < sequential; i++) {
      bareMs.push((await timed(bare))[0]);
      const [ms, body] = await timed(execute);
      apiMs.push(ms);
      workerMs.push(body.execution_time * 1000);
      sandboxMs.push(body.resource_usage.wall_time * 1000);
    }
    const api = summary(apiMs);
    const bareCold = summary(bareMs);

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
    const apiRate = await throughput(total, 8, execute);

    return {
      setup: {
        ...setupFacts(config),
      },
      latency_print1_python: {
        requests: sequential,
        api_ms: { ...api, p50: api.median },
        bare_cold_ms: { ...bareCold, p50: bareCold.median },
        ratio_p50: round(api.median / bareCold.median),
        ratio_p95: round(api.p95 / bareCold.p95),
        // Where an API request's time goes (medians): the worker's share, and the run itself.
        worker_execution_ms: round(percentile(workerMs, 50)),
        sandbox_wall_ms: round(percentile(sandboxMs, 50)),
      },
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
    };
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  console.log(JSON.stringify(await benchApi(), null, 2));
  process.exit(0);
}
