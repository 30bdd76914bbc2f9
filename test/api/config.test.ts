import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/load.js';

const dir = mkdtempSync(join(tmpdir(), 'warden-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function yaml(text: string): string {
  const path = join(dir, `${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(path, text);
  return path;
}

describe('service configuration', () => {
  it('has documented defaults', () => {
    const config = loadConfig({ env: {}, path: yaml('{}') });
    expect(config.server).toEqual({
      host: '127.0.0.1',
      port: 8080,
      bodyLimitBytes: 1024 * 1024,
      maxQueueDepth: 100,
      requestTimeoutMs: 60_000,
      retryAfterSeconds: 5,
      logLevel: 'info',
      maxResponseBytes: 16 * 1024 * 1024,
      maxTestCases: 50,
      cors: { origins: [] },
    });
    // On loopback no key is needed by default (test/auth/config.test.ts covers the rest).
    expect(config.auth).toEqual({ mode: 'none', publicMetrics: true });
    expect(config.store).toEqual({
      retention: 7 * 24 * 3600 * 1000,
      auditRetention: 365 * 24 * 3600 * 1000,
      auditFlushMs: 200,
    });
    expect(config.sandbox.maxRequestMs).toBe(120_000);
    expect(config.queue).toEqual({ redisServer: '/usr/bin/redis-server', prefix: 'warden' });
    expect(config.workers).toEqual({
      concurrency: availableParallelism(),
      inProcess: true,
      heartbeatIntervalMs: 5000,
    });
    expect(config.sandbox.allowNetwork).toBe(false);
  });

  it('takes environment overrides over the file, keeping the file’s other keys', () => {
    const path = yaml('server:\n  port: 9000\n  maxQueueDepth: 3\nsandbox:\n  allowNetwork: true\n');
    const config = loadConfig({
      path,
      env: {
        WARDEN_PORT: '9100',
        WARDEN_HOST: '0.0.0.0',
        WARDEN_DATA_DIR: '/srv/warden',
        WARDEN_BACKEND: 'process',
        DATABASE_URL: 'postgres://warden@db/warden',
        REDIS_URL: 'redis://cache:6379/2',
      },
    });
    expect(config.server).toMatchObject({ port: 9100, host: '0.0.0.0', maxQueueDepth: 3 });
    expect(config.auth.mode).toBe('keys');
    expect(config.dataDir).toBe('/srv/warden');
    expect(config.sandbox).toMatchObject({ backend: 'process', allowNetwork: true });
    expect(config.store.databaseUrl).toBe('postgres://warden@db/warden');
    expect(config.queue.redisUrl).toBe('redis://cache:6379/2');
  });

  it('names the bad key (and the variable it came from)', () => {
    const bad: [Parameters<typeof loadConfig>[0], RegExp][] = [
      [{ env: { WARDEN_PORT: 'eighty' } }, /server\.port \(from WARDEN_PORT\)/],
      [{ env: { WARDEN_PORT: '70000' } }, /server\.port \(from WARDEN_PORT\)/],
      [{ env: { DATABASE_URL: 'mysql://x' } }, /store\.databaseUrl \(from DATABASE_URL\)/],
      [{ env: { REDIS_URL: 'localhost:6379' } }, /queue\.redisUrl \(from REDIS_URL\)/],
      [{ env: {}, path: yaml('workers:\n  concurrency: 0\n') }, /workers\.concurrency/],
      [{ env: {}, path: yaml('server:\n  prot: 1\n') }, /server: .*"prot"/],
      [{ env: {}, path: yaml('sandbox:\n  allowNetwork: "yes"\n') }, /sandbox\.allowNetwork/],
    ];
    for (const [options, message] of bad) {
      expect(() => loadConfig(options)).toThrow(ConfigError);
      expect(() => loadConfig(options)).toThrow(message);
    }
  });
});
