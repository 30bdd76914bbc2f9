import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

/** `warden webhooks secret`: what GET /webhooks/secret gives a tenant, on the server's host. */

const BIN = fileURLToPath(new URL('../../bin/warden.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'warden-hooks-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// The store under `dir`, whatever this shell's environment names.
const env: NodeJS.ProcessEnv = { ...process.env, WARDEN_FROM_SOURCE: '1', WARDEN_DATA_DIR: dir };
delete env.DATABASE_URL;
delete env.WARDEN_CONFIG;

function warden(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    cwd: dir,
    env,
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout.trim(), stderr: r.stderr };
}

describe('warden webhooks secret', () => {
  it('makes a tenant’s secret once, prints it again, and rotates it', () => {
    const first = warden('webhooks', 'secret', '--tenant', 'acme');
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(warden('webhooks', 'secret', '--tenant', 'acme').stdout).toBe(first.stdout);
    const rotated = warden('webhooks', 'secret', '--tenant', 'acme', '--rotate', '--json');
    expect(rotated.code).toBe(0);
    const body = JSON.parse(rotated.stdout) as { tenant: string; secret: string; rotated_at: string };
    expect(body.tenant).toBe('acme');
    expect(body.secret).not.toBe(first.stdout);
    expect(body.rotated_at).not.toBeNull();
    expect(warden('webhooks', 'secret', '--tenant', 'acme').stdout).toBe(body.secret);
  });

  it('refuses a malformed tenant with exit 2', () => {
    const bad = warden('webhooks', 'secret', '--tenant', '../etc');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--tenant/);
  });
});
