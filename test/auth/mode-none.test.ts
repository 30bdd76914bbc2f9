import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logging.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { call } from '../helpers/server.js';
import { testConfig } from '../helpers/server.js';
import { keyOf } from '../helpers/tenants.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * auth.mode none (loopback only): requests without a key act for the built-in tenant `default` and
 * say so everywhere; a key, when one is sent, still counts. CORS answers only the configured origins.
 */

const ALLOWED = 'https://app.example.com';
let dir: string;
let server: RunningServer;
const logLines: string[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'warden-auth-none-'));
  const config = testConfig(dir, { server: { cors: { origins: [ALLOWED] } } });
  server = await startServer(config, {
    logger: createLogger('info', { write: (l: string) => void logLines.push(l) }),
  });
}, 60_000);
afterAll(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('auth.mode none', () => {
  it('says so in the start-up log and /health', async () => {
    const line = logLines
      .map((l) => JSON.parse(l) as { level: number; msg: string; auth?: string })
      .find((l) => l.auth);
    expect(line).toMatchObject({ level: 40, auth: 'none' });
    expect(line?.msg).toMatch(/no API key is needed.*tenant "default".*loopback/);
    const health = await call<{ auth: { mode: string; detail: string } }>(server.url, 'GET', '/health');
    expect(health.body.auth).toMatchObject({ mode: 'none', detail: expect.stringContaining('loopback') });
  });

  it('keyless requests are the tenant default; a key still counts, and tenants stay apart', async () => {
    const alice = { authorization: `Bearer ${await keyOf(server.url, 'alice')}` };
    const submit = async (headers: Record<string, string>) => {
      const res = await call<{ request_id: string }>(
        server.url,
        'POST',
        '/execute?wait=false',
        { language: 'python', code: 'print(1)' },
        headers,
      );
      expect(res.status, logLines.filter((l) => l.includes('"level":50')).join('\n')).toBe(202);
      return res.body.request_id;
    };
    const keyless = await submit({});
    const alices = await submit(alice);
    expect((await call(server.url, 'GET', `/executions/${keyless}`)).status).toBe(200);
    expect((await call(server.url, 'GET', `/executions/${keyless}`, undefined, alice)).status).toBe(404);
    expect((await call(server.url, 'GET', `/executions/${alices}`, undefined, alice)).status).toBe(200);
    expect((await call(server.url, 'GET', `/executions/${alices}`)).status).toBe(404);
    // A key that is not one is refused even here: a client that sends one means it.
    expect(
      (await call(server.url, 'GET', '/jobs', undefined, { authorization: `Bearer wdn_${'f'.repeat(64)}` }))
        .status,
    ).toBe(401);
  });

  it('answers CORS for the configured origin only', async () => {
    const preflight = (origin: string) =>
      fetch(`${server.url}/execute`, {
        method: 'OPTIONS',
        headers: {
          origin,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'authorization,content-type',
        },
      });
    const allowed = await preflight(ALLOWED);
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get('access-control-allow-origin')).toBe(ALLOWED);
    expect(allowed.headers.get('access-control-allow-headers')).toContain('authorization');
    const other = await preflight('https://evil.example.com');
    expect(other.headers.get('access-control-allow-origin')).toBeNull();

    const get = await fetch(`${server.url}/languages`, { headers: { origin: ALLOWED } });
    expect(get.headers.get('access-control-allow-origin')).toBe(ALLOWED);
    expect(get.headers.get('access-control-expose-headers')).toContain('x-request-id');
    // A refusal is readable by the allowed page too (CORS headers go out before the key is checked).
    const refused = await fetch(`${server.url}/jobs`, {
      headers: { origin: ALLOWED, authorization: `Bearer wdn_${'0'.repeat(64)}` },
    });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('access-control-allow-origin')).toBe(ALLOWED);
    const evil = await fetch(`${server.url}/languages`, { headers: { origin: 'https://evil.example.com' } });
    expect(evil.headers.get('access-control-allow-origin')).toBeNull();
  });
});
