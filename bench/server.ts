import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configSchema, type WardenConfig } from '../src/config/schema.js';
import { startServer, type RunningServer } from '../src/server.js';
import type { AuditLog } from '../src/store/audit.js';

/** The embedded service (local redis-server, SQLite in a temp data dir) for one benchmark. */
export async function withBenchServer<T>(
  name: string,
  fn: (server: RunningServer, config: WardenConfig) => Promise<T>,
  options: { audit?: AuditLog } = {},
): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), `warden-bench-${name}-`));
  const config = configSchema.parse({
    dataDir: dir,
    server: { port: 0, logLevel: 'warn', maxQueueDepth: 10_000 },
  });
  const server = await startServer(config, options);
  try {
    return await fn(server, config);
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export function setupFacts(config: WardenConfig): Record<string, unknown> {
  return {
    workers: config.workers.concurrency,
    pool_per_language: config.sandbox.pool.size,
    backend: config.sandbox.backend,
    store: 'sqlite',
    queue: 'local redis-server',
  };
}
