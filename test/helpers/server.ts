import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configSchema, type WardenConfig } from '../../src/config/schema.js';
import { startServer, type RunningServer } from '../../src/server.js';

/**
 * A real Warden server for API tests: loopback, free port, a temp data dir (SQLite, local redis),
 * the real bwrap engine. Built from the schema, not loadConfig, so the caller's environment
 * (REDIS_URL, DATABASE_URL, …) cannot leak in.
 */
export interface TestServer {
  server: RunningServer;
  url: string;
  config: WardenConfig;
  close(): Promise<void>;
}

export function testConfig(
  dir: string,
  sections: Record<string, Record<string, unknown>> = {},
): WardenConfig {
  return configSchema.parse({
    ...sections,
    dataDir: dir,
    server: { port: 0, logLevel: 'silent', ...sections.server },
    sandbox: { pool: { size: 1 }, ...sections.sandbox },
  });
}

export async function startTestServer(
  sections: Record<string, Record<string, unknown>> = {},
): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-api-'));
  const config = testConfig(dir, sections);
  const server = await startServer(config);
  return {
    server,
    url: server.url,
    config,
    async close() {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface Answer<T = Record<string, unknown>> {
  status: number;
  headers: Headers;
  body: T;
}

export async function call<T = Record<string, unknown>>(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Answer<T>> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON (metrics, docs)
  }
  return { status: res.status, headers: res.headers, body: parsed as T };
}

/** Reads one sample of a Prometheus counter (0 when absent). */
export function sample(metrics: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of metrics.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)))
      total += Number(line.split(' ').pop());
  }
  return total;
}
