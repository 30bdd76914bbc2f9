import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startTestServer, type TestServer } from '../helpers/server.js';
import { startTestS3, type TestS3 } from '../helpers/s3.js';
import { b64, finished, submit } from './helpers.js';

/**
 * A job's outputs through an S3-compatible store (s3rver on loopback): uploaded by the worker, listed
 * with the store’s own presigned URLs, downloaded byte-identical from the store.
 */

let s3: TestS3;
let t: TestServer;
const uploads: string[] = [];

beforeAll(async () => {
  s3 = await startTestS3();
  s3.onRequest((method, url) => {
    if (method === 'PUT' || method === 'POST') uploads.push(url);
  });
  t = await startTestServer({ artifacts: { s3: s3.config } });
});
afterAll(async () => {
  await t?.close();
  await s3?.close();
});

describe('artifacts on S3', () => {
  it('are byte-identical after download through presigned URLs', async () => {
    const binary = randomBytes(300_000);
    const script = [
      'data = open("in.bin", "rb").read()',
      'open("/out/copy.bin", "wb").write(data)',
      'open("/out/note.txt", "w").write("text ✓\\n")',
    ].join('\n');
    const id = await submit(t.url, {
      command: 'python3 copy.py',
      files: [
        { path: 'copy.py', content: b64(script) },
        { path: 'in.bin', content: b64(binary) },
      ],
    });
    const done = await finished(t.url, id);
    expect(done.status, JSON.stringify(done)).toBe('completed');
    expect(uploads.some((u) => u.includes(`jobs/${id}/copy.bin`))).toBe(true);

    const links = await call<{ path: string; url: string; sha256: string }[]>(
      t.url,
      'GET',
      `/jobs/${id}/artifacts`,
    );
    expect(links.status).toBe(200);
    const byPath = Object.fromEntries(links.body.map((l) => [l.path, l]));
    expect(byPath['copy.bin']!.url.startsWith(`${s3.endpoint}/`)).toBe(true);
    const copy = Buffer.from(await (await fetch(byPath['copy.bin']!.url)).arrayBuffer());
    expect(copy.equals(binary)).toBe(true);
    expect(byPath['copy.bin']!.sha256).toBe(createHash('sha256').update(binary).digest('hex'));
    expect(await (await fetch(byPath['note.txt']!.url)).text()).toBe('text ✓\n');
  });
});
