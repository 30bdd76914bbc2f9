import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/store/api-keys.js';
import { openStore } from '../../src/store/db.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/**
 * The examples in examples/ run as a user runs them (importing `warden/sdk` by its package name,
 * resolved to the source through the `source` export condition) against a real server with API
 * keys on, so they cannot rot.
 */

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));

let t: TestServer;
let apiKey: string;

beforeAll(async () => {
  t = await startTestServer({ auth: { mode: 'keys' }, jobs: { pollMs: 50 } });
  const store = await openStore(t.config);
  try {
    apiKey = (await createApiKey(store.db, { tenant: 'examples' })).key;
  } finally {
    await store.close();
  }
});
afterAll(() => t?.close());

async function example(name: string): Promise<string> {
  const { stdout } = await run('node', ['--conditions=source', '--import', 'tsx', `examples/${name}`], {
    cwd: root,
    env: { ...process.env, WARDEN_URL: t.url, WARDEN_API_KEY: apiKey },
    timeout: 120_000,
  });
  return stdout;
}

const EXPECTED: Record<string, RegExp[]> = {
  'execute.ts': [
    /^success: hello, world \(/m,
    /^security_violation: .*process_spawn/m,
    /^refused: unknown_language \(field language, request [0-9a-f-]{36}\)$/m,
  ],
  'task-file.ts': [/^word_count: VALIDATED$/m, /^task succeeded: \{"words":4\}$/m],
  'job-logs.ts': [
    /^\[stdout\] read ada\n\[stdout\] read lin$/m,
    /^job completed$/m,
    /^data\.json \(\d+ bytes\): \[\{"name": "ada", "n": 1\}, \{"name": "lin", "n": 2\}\]$/m,
  ],
};

describe('examples/', () => {
  it('every example has its expectations here', () => {
    const files = readdirSync(new URL('../../examples/', import.meta.url)).filter((f) => f.endsWith('.ts'));
    expect(files.sort()).toEqual(Object.keys(EXPECTED).sort());
  });

  for (const [name, patterns] of Object.entries(EXPECTED)) {
    it(`${name} runs and prints what it promises`, async () => {
      const out = await example(name);
      for (const pattern of patterns) expect(out).toMatch(pattern);
    });
  }
});
