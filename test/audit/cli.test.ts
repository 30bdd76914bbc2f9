import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditTailCommand } from '../../src/cli/audit.js';
import { UsageError } from '../../src/cli/common.js';
import { writeAudit, type AuditEvent } from '../../src/store/audit.js';
import { openStore, type Store } from '../../src/store/db.js';
import { testConfig } from '../helpers/server.js';
import { until } from '../helpers/wait.js';

/** `warden audit tail`: the last records, filtered, then new ones as they come (--follow). */

const BIN = fileURLToPath(new URL('../../bin/warden.js', import.meta.url));
let dir: string;
let configFile: string;
let store: Store;

const event = (tenant: string, target: string, action: AuditEvent['action'] = 'job.created'): AuditEvent => ({
  tenant,
  actor: tenant,
  action,
  target,
  outcome: 'queued',
});

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'warden-audit-cli-'));
  configFile = join(dir, 'warden.yaml');
  writeFileSync(configFile, `dataDir: ${dir}\n`);
  store = await openStore(testConfig(dir));
  await writeAudit(store.db, [
    event('ann', 'j1'),
    event('bob', 'j2'),
    event('ann', 'j3', 'job.cancelled'),
    event('ann', 'j4'),
  ]);
});
afterAll(async () => {
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('warden audit tail', () => {
  it('prints the last records oldest first, filtered by tenant and action', () => {
    const r = spawnSync(
      process.execPath,
      [BIN, '--config', configFile, 'audit', 'tail', '--tenant', 'ann', '--action', 'job.created', '--json'],
      { encoding: 'utf8', env: { ...process.env, WARDEN_FROM_SOURCE: '1' }, timeout: 60_000 },
    );
    expect(r.status, r.stderr).toBe(0);
    const rows = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { target: string; tenant: string });
    expect(rows.map((x) => x.target)).toEqual(['j1', 'j4']);
  });

  it('follows new records until stopped', async () => {
    const out: string[] = [];
    const stop = new AbortController();
    const tail = auditTailCommand({
      config: configFile,
      tenant: 'bob',
      lines: 5,
      follow: true,
      pollMs: 50,
      signal: stop.signal,
      write: (line) => out.push(line),
    });
    await until(() => (out.length === 1 ? true : undefined));
    expect(out[0]).toMatch(/ job\.created tenant=bob actor=bob target=j2 outcome=queued$/);
    await writeAudit(store.db, [event('ann', 'j5'), event('bob', 'j6', 'job.cancelled')]);
    await until(() => (out.length === 2 ? true : undefined));
    expect(out[1]).toContain('target=j6');
    stop.abort();
    await expect(tail).resolves.toBe(0);
    expect(out).toHaveLength(2);
  });

  it('refuses an unknown action, naming the known ones', async () => {
    await expect(auditTailCommand({ config: configFile, action: 'job.deleted' })).rejects.toThrow(UsageError);
  });
});
