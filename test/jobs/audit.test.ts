import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../src/server.js';
import { call, testConfig } from '../helpers/server.js';
import { finished, submit } from './helpers.js';

/** Until the audit log exists, job creations and cancellations are structured log lines. */

const lines: Record<string, unknown>[] = [];
let dir: string;
let server: RunningServer;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'warden-jobaudit-'));
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  server = await startServer(testConfig(dir), { logger });
});
afterAll(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('audit lines', () => {
  it('record who created and who cancelled which job, without the environment’s values', async () => {
    const id = await submit(
      server.url,
      { command: 'sleep 60', environment: { API_TOKEN: 'secret-value-123' } },
      'auditor',
    );
    const cancel = await call(server.url, 'DELETE', `/jobs/${id}`, undefined, { 'x-warden-user': 'auditor' });
    expect([200, 202]).toContain(cancel.status);
    await finished(server.url, id, 'auditor');
    expect(lines).toContainEqual(
      expect.objectContaining({
        audit: 'job.created',
        jobId: id,
        user: 'auditor',
        argv: ['/usr/bin/sleep', '60'],
      }),
    );
    expect(lines).toContainEqual(
      expect.objectContaining({ audit: 'job.cancelled', jobId: id, user: 'auditor' }),
    );
    expect(JSON.stringify(lines)).not.toContain('secret-value-123');
  });
});
