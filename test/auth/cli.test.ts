import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import { startServer } from '../../src/server.js';
import { call } from '../helpers/server.js';

/**
 * `warden keys create|list|revoke` and the secure default: `warden serve` beyond loopback refuses
 * to start without a key and names the command that makes one; with a key made by the CLI, the
 * server (same config, same store) starts and takes it.
 */

const BIN = fileURLToPath(new URL('../../bin/warden.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'warden-keys-cli-'));
const dataDir = join(dir, 'data');
const configPath = join(dir, 'warden.yaml');
// Beyond loopback, on a free port, quiet: auth.mode is keys by default here.
writeFileSync(
  configPath,
  stringify({
    dataDir,
    server: { host: '0.0.0.0', port: 0, logLevel: 'silent' },
    sandbox: { pool: { size: 0 } },
  }),
);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function warden(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, '--config', configPath, ...args], {
    encoding: 'utf8',
    env: {
      ...process.env,
      WARDEN_FROM_SOURCE: '1',
      DATABASE_URL: '',
      REDIS_URL: '',
      WARDEN_HOST: '',
      WARDEN_PORT: '',
    },
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface Listed {
  keys: { id: string; tenant: string; scopes: string[]; state: string; expires_at: string | null }[];
}

describe('warden keys and the secure default', () => {
  const made: string[] = [];

  it('warden serve on 0.0.0.0 without a key refuses, naming the command that makes the first one', () => {
    const r = warden('serve');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /refusing to listen on 0\.0\.0\.0: auth\.mode is keys and no API key exists yet/,
    );
    expect(r.stderr).toContain('warden keys create --tenant admin --scopes admin,execute,tasks,jobs');
    const doctor = warden('doctor', '--json');
    const auth = JSON.parse(doctor.stdout).auth;
    expect(auth).toMatchObject({ mode: 'keys', usable_keys: 0 });
    expect(auth.problem).toMatch(/warden serve would refuse to start/);
  }, 120_000);

  it('keys create prints the key once on stdout; list shows it without it; revoke revokes', () => {
    const created = warden(
      'keys',
      'create',
      '--tenant',
      'acme',
      '--scopes',
      'execute,admin',
      '--expires',
      '90d',
    );
    expect(created.code, created.stderr).toBe(0);
    const key = created.stdout.trim();
    expect(key).toMatch(/^wdn_[0-9a-f]{64}$/);
    made.push(key);
    expect(created.stderr).toMatch(
      /key key_[0-9a-f]{16} for tenant acme, scopes execute,admin, expires 20\d\d-/,
    );
    expect(created.stderr).toMatch(/shown only this once/);

    const json = warden('keys', 'create', '--tenant', 'acme', '--json');
    expect(json.code).toBe(0);
    const second = JSON.parse(json.stdout) as { id: string; key: string; scopes: string[] };
    expect(second.scopes).toEqual(['execute', 'tasks', 'jobs']);
    made.push(second.key);

    const listed = warden('keys', 'list', '--json');
    expect(listed.code).toBe(0);
    const keys = (JSON.parse(listed.stdout) as Listed).keys;
    expect(keys.map((k) => k.state)).toEqual(['active', 'active']);
    expect(Date.parse(keys[0]!.expires_at!) - Date.now()).toBeGreaterThan(89 * 86_400_000);
    for (const k of made) expect(listed.stdout).not.toContain(k.slice(4));
    const table = warden('keys', 'list');
    expect(table.stdout).toMatch(/^ID\s+TENANT\s+SCOPES\s+STATE/);
    expect(table.stdout).toContain(second.id);

    const revoked = warden('keys', 'revoke', second.id);
    expect(revoked.code).toBe(0);
    expect(revoked.stderr).toContain(`key ${second.id} of tenant acme is revoked`);
    const after = (JSON.parse(warden('keys', 'list', '--json', '--tenant', 'acme').stdout) as Listed).keys;
    expect(after.find((k) => k.id === second.id)?.state).toBe('revoked');
  }, 120_000);

  it('refuses bad requests with exit 2, naming the option', () => {
    const cases: [string[], RegExp][] = [
      [['keys', 'create', '--tenant', 'acme', '--scopes', 'root'], /--scopes: unknown scope "root"/],
      [['keys', 'create', '--tenant', '../etc'], /--tenant: the tenant must be/],
      [['keys', 'create', '--tenant', 'acme', '--expires', 'soon'], /--expires: a duration such as 90d/],
      [['keys', 'revoke', 'key_nope'], /no API key "key_nope"/],
    ];
    for (const [args, message] of cases) {
      const r = warden(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(message);
    }
  }, 120_000);

  it('with the key the CLI made, the server starts on 0.0.0.0 and takes it; the revoked one it refuses', async () => {
    const config = loadConfig({ path: configPath, env: {} });
    expect(config.auth.mode).toBe('keys');
    const server = await startServer(config);
    try {
      const url = server.url.replace('0.0.0.0', '127.0.0.1');
      const health = await call<{ auth: { mode: string } }>(url, 'GET', '/health');
      expect(health.body.auth.mode).toBe('keys');
      const code = { language: 'python', code: 'print(1)' };
      expect((await call(url, 'POST', '/validate', code)).status).toBe(401);
      expect(
        (await call(url, 'POST', '/validate', code, { authorization: `Bearer ${made[0]}` })).status,
      ).toBe(200);
      expect(
        (await call(url, 'POST', '/validate', code, { authorization: `Bearer ${made[1]}` })).status,
      ).toBe(401);
    } finally {
      await server.close();
    }
    // And the store holds no key: the SQLite files as they are on disk.
    const files = readdirSync(dataDir).filter((f) => f.startsWith('warden.sqlite'));
    const bytes = files.map((f) => readFileSync(join(dataDir, f)).toString('latin1')).join('');
    expect(bytes.length).toBeGreaterThan(0);
    for (const k of made) expect(bytes.includes(k.slice(4))).toBe(false);
  }, 120_000);
});
