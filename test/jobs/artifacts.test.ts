import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import Fastify, { type FastifyInstance } from 'fastify';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installErrorHandling } from '../../src/api/errors.js';
import { artifactRoutes } from '../../src/api/routes/artifacts.js';
import { openArtifactStore, type ArtifactStore, type LocalArtifactStore } from '../../src/artifacts/index.js';
import { configSchema, type WardenConfig } from '../../src/config/schema.js';
import { startTestS3, type TestS3 } from '../helpers/s3.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const logger = pino({ level: 'silent' });
const MiB = 1024 * 1024;
const TEXT = Buffer.from('héllo, artefact\nline two\n');
const BINARY = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7 + (i >> 8)) & 0xff));

function configFor(dataDir: string, artifacts: Record<string, unknown> = {}): WardenConfig {
  return configSchema.parse({ dataDir, artifacts });
}

/** `size` pseudo-random bytes made chunk by chunk on demand, with the sha256 of what was produced. */
function generated(
  size: number,
  onChunk: (produced: number) => void = () => {},
): { stream: Readable; digest: () => string; produced: () => number } {
  const hash = createHash('sha256');
  let produced = 0;
  const stream = new Readable({
    read() {
      if (produced === size) return void this.push(null);
      onChunk(produced);
      const chunk = randomBytes(Math.min(size - produced, 256 * 1024));
      produced += chunk.length;
      hash.update(chunk);
      this.push(chunk);
    },
  });
  return { stream, digest: () => hash.digest('hex'), produced: () => produced };
}

/** Downloads a URL chunk by chunk: its status, sha256 and length. */
async function download(url: string): Promise<{ status: number; sha256: string; bytes: number }> {
  const res = await fetch(url);
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  return { status: res.status, sha256: hash.digest('hex'), bytes };
}

describe('artifact keys', () => {
  let dir: string;
  let store: ArtifactStore;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-artifacts-'));
    store = await openArtifactStore(configFor(dir), logger);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each([
    '',
    '/etc/passwd',
    '../outside',
    'jobs/1/../../../etc/passwd',
    'jobs/1/./x',
    'jobs//x',
    'jobs/1/',
    'jobs/1/a\0b',
    'jobs/1/a\nb',
    'jobs\\..\\x',
  ])('refuses %j everywhere', async (key) => {
    await expect(store.put(key, Buffer.from('x'), 1)).rejects.toThrow();
    await expect(store.signedUrl(key, new Date(Date.now() + 60_000))).rejects.toThrow();
  });

  it('refuses a traversal prefix and deletes only whole directories', async () => {
    await expect(store.deletePrefix('../')).rejects.toThrow();
    await expect(store.deletePrefix('/')).rejects.toThrow();
    await store.put('jobs/1/a.txt', Buffer.from('1'), 1);
    await store.put('jobs/10/a.txt', Buffer.from('10'), 2);
    await store.deletePrefix('jobs/1');
    expect(() => statSync(join(dir, 'artifacts/objects/jobs/1/a.txt'))).toThrow();
    expect(statSync(join(dir, 'artifacts/objects/jobs/10/a.txt')).size).toBe(2);
  });

  it("removes uploads a dead process left half-written, and keeps a live process's", async () => {
    const incoming = join(dir, 'artifacts/incoming');
    const dead = spawnSync('/bin/true').pid!;
    writeFileSync(join(incoming, `${dead}-abandoned`), 'partial');
    writeFileSync(join(incoming, `${process.ppid}-in-progress`), 'partial');
    await openArtifactStore(configFor(dir), logger);
    expect(readdirSync(incoming).sort()).toEqual([`${process.ppid}-in-progress`]);
    rmSync(join(incoming, `${process.ppid}-in-progress`));
  });

  it('refuses a stream whose length is not the announced size, leaving nothing behind', async () => {
    await expect(store.put('jobs/2/short', Readable.from([Buffer.from('abc')]), 10)).rejects.toThrow(
      /10 bytes/,
    );
    expect(() => statSync(join(dir, 'artifacts/objects/jobs/2/short'))).toThrow();
  });
});

describe('local artifact store behind GET /artifacts/*', () => {
  let dir: string;
  let store: LocalArtifactStore;
  let app: FastifyInstance;
  let base: string;
  const opened: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-artifacts-'));
    store = (await openArtifactStore(configFor(dir), logger)) as LocalArtifactStore;
    // The real store, with a record of every key the route asked it to open.
    const recorded: LocalArtifactStore = {
      ...store,
      openObject: (key) => {
        opened.push(key);
        return store.openObject(key);
      },
    };
    app = Fastify({ forceCloseConnections: true });
    app.setValidatorCompiler(validatorCompiler);
    app.setSerializerCompiler(serializerCompiler);
    installErrorHandling(app, 1);
    await app.register(artifactRoutes({ logger }, recorded));
    base = await app.listen({ host: '127.0.0.1', port: 0 });
    await store.put('jobs/j1/out/report v1 ü.txt', TEXT, TEXT.length);
    await store.put(
      'jobs/j1/out/data.bin',
      Readable.from([BINARY.subarray(0, 1000), BINARY.subarray(1000)]),
      BINARY.length,
    );
    await store.put('jobs/j2/out/secret.txt', Buffer.from('other job'), 9);
  });
  afterAll(async () => {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const soon = () => new Date(Date.now() + 60_000);

  it('serves text and binary artifacts byte-identical, with length and a safe file name', async () => {
    for (const [key, body] of [
      ['jobs/j1/out/report v1 ü.txt', TEXT],
      ['jobs/j1/out/data.bin', BINARY],
    ] as const) {
      const url = await store.signedUrl(key, soon());
      expect(url).toMatch(/^\/artifacts\/jobs\/j1\/out\/[^?]+\?expires=\d+&sig=[\w-]{43}$/);
      const res = await fetch(base + url);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-length')).toBe(String(body.length));
      expect(res.headers.get('content-type')).toBe('application/octet-stream');
      expect(res.headers.get('content-disposition')).toMatch(
        /^attachment; filename="[\x20-\x7e]+"; filename\*=UTF-8''/,
      );
      expect(Buffer.from(await res.arrayBuffer()).equals(body)).toBe(true);
    }
  });

  it('refuses tampered, expired, re-keyed and mangled links with 403 without opening anything', async () => {
    const key = 'jobs/j2/out/secret.txt';
    const good = await store.signedUrl(key, soon());
    const [path, query] = good.split('?') as [string, string];
    const params = new URLSearchParams(query);
    const sig = params.get('sig')!;
    const expires = params.get('expires')!;
    const flipped = (sig[0] === 'A' ? 'B' : 'A') + sig.slice(1);
    const otherUrl = await store.signedUrl('jobs/j1/out/data.bin', soon());
    const otherSig = new URLSearchParams(otherUrl.split('?')[1]).get('sig')!;
    const expired = await store.signedUrl(key, new Date(Date.now() - 1000));
    const cases = [
      `${path}?expires=${expires}&sig=${flipped}`, // tampered signature
      `${path}?expires=${Number(expires) + 3600}&sig=${sig}`, // extended expiry
      `${path}?expires=${expires}&sig=${otherSig}`, // another key's signature
      `/artifacts/jobs/j1/out/data.bin?expires=${expires}&sig=${sig}`, // this signature on another key
      expired,
      `${path}?sig=${sig}`,
      `${path}?expires=${expires}`,
      `${path}?expires=-1&sig=${sig}`,
      `${path}?expires=${expires}&sig=${sig}x`,
      `/artifacts/jobs/j2/out/..%2F..%2Fj1%2Fout%2Fdata.bin?expires=${expires}&sig=${sig}`,
      `/artifacts/jobs/j2/%2e%2e/j1/out/data.bin?expires=${expires}&sig=${sig}`,
      `/artifacts/%2Fetc%2Fpasswd?expires=${expires}&sig=${sig}`,
      `/artifacts/jobs/j2/out/secret.txt%00?expires=${expires}&sig=${sig}`,
    ];
    opened.length = 0;
    for (const url of cases) {
      const res = await fetch(base + url);
      expect(res.status, url).toBe(403);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('forbidden');
      if (url === expired) expect(body.error.message).toMatch(/expired/);
    }
    // Percent-encoding that does not decode is refused by the router itself.
    expect((await fetch(`${base}/artifacts/jobs/j2/out/%E0%A4%A?expires=${expires}&sig=${sig}`)).status).toBe(
      400,
    );
    expect(opened).toEqual([]);
    // The untouched link still works.
    expect((await fetch(base + good)).status).toBe(200);
  });

  it('never follows a link planted in the store: the file behind it is not served', async () => {
    const objects = join(dir, 'artifacts/objects');
    writeFileSync(join(dir, 'host-secret'), 'host bytes');
    symlinkSync(join(dir, 'host-secret'), join(objects, 'jobs/j1/out/link.txt'));
    mkdirSync(join(dir, 'elsewhere'));
    writeFileSync(join(dir, 'elsewhere/x.txt'), 'host bytes');
    symlinkSync(join(dir, 'elsewhere'), join(objects, 'jobs/j1/dirlink'));
    for (const key of ['jobs/j1/out/link.txt', 'jobs/j1/dirlink/x.txt']) {
      const res = await fetch(base + (await store.signedUrl(key, soon())));
      expect(res.status, key).toBe(404);
      expect(await res.text()).not.toContain('host bytes');
    }
  });

  it('keeps one signing key per data dir, mode 0600, shared by every process of the host', async () => {
    const keyFile = join(dir, 'artifact-signing.key');
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    const second = await openArtifactStore(configFor(dir), logger);
    const expiresAt = soon();
    expect(await second.signedUrl('jobs/j1/out/data.bin', expiresAt)).toBe(
      await store.signedUrl('jobs/j1/out/data.bin', expiresAt),
    );
    const configured = await openArtifactStore(configFor(dir, { signingSecret: 'x'.repeat(32) }), logger);
    const url = await configured.signedUrl('jobs/j1/out/data.bin', expiresAt);
    expect((await fetch(base + url)).status).toBe(403);
  });

  it('streams a 50 MB artifact in and out without holding it whole', async () => {
    const size = 50 * MiB;
    const incoming = join(dir, 'artifacts/incoming');
    const onDisk = () => readdirSync(incoming).reduce((n, f) => n + statSync(join(incoming, f)).size, 0);
    // Whenever the producer is asked for more, nearly all it made so far must already be on disk.
    let maxAhead = 0;
    const source = generated(size, (produced) => (maxAhead = Math.max(maxAhead, produced - onDisk())));
    await store.put('jobs/big/out/big.bin', source.stream, size);
    expect(maxAhead).toBeLessThanOrEqual(2 * MiB);
    const got = await download(base + (await store.signedUrl('jobs/big/out/big.bin', soon())));
    expect(got.status).toBe(200);
    expect(got.bytes).toBe(size);
    expect(got.sha256).toBe(source.digest());
  });
});

describe('S3 artifact store against a real S3-compatible server (s3rver)', () => {
  let s3: TestS3;
  let store: ArtifactStore;
  let dir: string;
  beforeAll(async () => {
    s3 = await startTestS3();
    dir = mkdtempSync(join(tmpdir(), 'warden-artifacts-'));
    store = await openArtifactStore(configFor(dir, { s3: s3.config }), logger);
  });
  afterAll(async () => {
    await store?.close();
    await s3?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('uploads text and binary artifacts and serves them byte-identical by presigned URL', async () => {
    expect(store.kind).toBe('s3');
    await store.put('jobs/s1/out/notes ü.txt', TEXT, TEXT.length);
    await store.put('jobs/s1/out/data.bin', Readable.from([BINARY]), BINARY.length);
    for (const [key, body] of [
      ['jobs/s1/out/notes ü.txt', TEXT],
      ['jobs/s1/out/data.bin', BINARY],
    ] as const) {
      const url = await store.signedUrl(key, new Date(Date.now() + 60_000));
      expect(url.startsWith(`${s3.endpoint}/${s3.bucket}/`)).toBe(true);
      expect(url).toContain('X-Amz-Signature=');
      const res = await fetch(url);
      expect(res.status).toBe(200);
      expect(Buffer.from(await res.arrayBuffer()).equals(body)).toBe(true);
    }
  });

  it('streams a 50 MB artifact up in parts and down again', async () => {
    const size = 50 * MiB;
    const source = generated(size);
    // What the producer had made when the store received the first part: far from the whole file.
    let producedAtFirstPart: number | undefined;
    s3.onRequest((method, url) => {
      if (method === 'PUT' && /[?&]partNumber=1(&|$)/.test(url)) producedAtFirstPart ??= source.produced();
    });
    await store.put('jobs/s2/out/big.bin', source.stream, size);
    expect(producedAtFirstPart).toBeDefined();
    expect(producedAtFirstPart!).toBeLessThanOrEqual(20 * MiB);
    const got = await download(await store.signedUrl('jobs/s2/out/big.bin', new Date(Date.now() + 60_000)));
    expect(got.status).toBe(200);
    expect(got.bytes).toBe(size);
    expect(got.sha256).toBe(source.digest());
  });

  it('an expired presigned URL is refused by the store', async () => {
    await store.put('jobs/s3/out/x.txt', TEXT, TEXT.length);
    const url = await store.signedUrl('jobs/s3/out/x.txt', new Date(Date.now() + 1000));
    expect((await fetch(url)).status).toBe(200);
    // s3rver checks X-Amz-Date + X-Amz-Expires (it does not check SigV4 signatures themselves).
    const deadline = Date.now() + 15_000;
    let status = 200;
    while (status === 200 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      status = (await fetch(url)).status;
    }
    expect(status).toBe(403);
  });

  it('refuses a stream whose length is not the announced size, leaving no object', async () => {
    await expect(store.put('jobs/s4/short', Readable.from([Buffer.from('abc')]), 10)).rejects.toThrow(
      /10 bytes/,
    );
    await expect(store.put('jobs/s4/long', Readable.from([Buffer.from('abcdef')]), 3)).rejects.toThrow(
      /3 bytes/,
    );
    const soon = new Date(Date.now() + 60_000);
    for (const key of ['jobs/s4/short', 'jobs/s4/long']) {
      expect((await fetch(await store.signedUrl(key, soon))).status).toBe(404);
    }
  });

  it('deletes a prefix and nothing beside it', async () => {
    await store.put('jobs/7/out/a', Buffer.from('a'), 1);
    await store.put('jobs/70/out/a', Buffer.from('b'), 1);
    await store.deletePrefix('jobs/7');
    const soon = new Date(Date.now() + 60_000);
    expect((await fetch(await store.signedUrl('jobs/7/out/a', soon))).status).toBe(404);
    expect((await fetch(await store.signedUrl('jobs/70/out/a', soon))).status).toBe(200);
  });
});

describe('GET /artifacts/* on the real server', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  it('serves what another process of the host stored and signed, and refuses a forged link', async () => {
    // A worker process opens its own store on the same data dir: same directory, same signing key.
    const worker = await openArtifactStore(server.config, logger);
    await worker.put('jobs/w1/out/result.bin', BINARY, BINARY.length);
    const url = await worker.signedUrl('jobs/w1/out/result.bin', new Date(Date.now() + 60_000));
    const res = await fetch(server.url + url);
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(BINARY)).toBe(true);
    const forged = await fetch(
      server.url + url.replace(/sig=./, (m) => (m.endsWith('A') ? 'sig=B' : 'sig=A')),
    );
    expect(forged.status).toBe(403);
    expect(((await forged.json()) as { error: { code: string } }).error.code).toBe('forbidden');
  });
});
