import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WardenClient, WardenConnectionError, WardenError } from '../../src/sdk/index.js';
import { call, sample, startTestServer, type TestServer } from '../helpers/server.js';

/**
 * What the SDK does when the network or the server misbehaves: retries of 429/503 as Retry-After
 * says (and no longer than allowed), a log stream resumed after a dropped connection, the API key
 * kept away from other origins. A scripted HTTP server plays the misbehaving side; a real Warden
 * with a queue that admits nothing gives a real 429.
 */

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
let handler: Handler = (_req, res) => res.end();
const seen: { method: string; url: string; headers: IncomingMessage['headers'] }[] = [];
let stub: Server;
let base: string;

beforeAll(async () => {
  stub = createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    handler(req, res);
  });
  await new Promise<void>((resolve) => stub.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(stub.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => stub.close(() => resolve())));
afterEach(() => {
  seen.length = 0;
});

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) =>
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));

const refusal = (code: string) => ({
  error: { code, message: `${code} now`, field: null, request_id: 'req-1' },
});

describe('retries', () => {
  it('429 then 503 are retried after Retry-After; the third answer is the result', async () => {
    let n = 0;
    handler = (_req, res) => {
      n++;
      if (n === 1) return json(res, 429, refusal('queue_full'), { 'retry-after': '0' });
      if (n === 2) return json(res, 503, refusal('store_unavailable'), { 'retry-after': '0' });
      json(res, 200, { languages: [{ id: 'python' }] });
    };
    const warden = new WardenClient({ baseUrl: base, apiKey: 'wdn_test' });
    const languages = await warden.languages();
    expect(languages).toEqual([{ id: 'python' }]);
    expect(seen.map((s) => s.headers.authorization)).toEqual(Array(3).fill('Bearer wdn_test'));
  });

  it('without Retry-After it backs off; past maxRetries the last error is thrown, typed', async () => {
    handler = (_req, res) => json(res, 503, refusal('queue_unavailable'));
    const warden = new WardenClient({ baseUrl: base, retry: { maxRetries: 2, baseDelayMs: 1 } });
    const err = (await warden.languages().catch((e: unknown) => e)) as WardenError;
    expect(err).toBeInstanceOf(WardenError);
    expect(err).toMatchObject({ status: 503, code: 'queue_unavailable', requestId: 'req-1' });
    expect(seen).toHaveLength(3);
  });

  it('a Retry-After longer than maxDelayMs is not waited out', async () => {
    handler = (_req, res) => json(res, 429, refusal('queue_full'), { 'retry-after': '3600' });
    const warden = new WardenClient({ baseUrl: base, retry: { maxDelayMs: 1000 } });
    const err = (await warden.languages().catch((e: unknown) => e)) as WardenError;
    expect(err).toMatchObject({ status: 429, retryAfterSeconds: 3600 });
    expect(seen).toHaveLength(1);
  });

  it('other errors are not retried; a body that is not Warden’s still becomes a WardenError', async () => {
    handler = (_req, res) => res.writeHead(502, { 'content-type': 'text/html' }).end('<h1>Bad Gateway</h1>');
    const err = (await new WardenClient({ baseUrl: base })
      .languages()
      .catch((e: unknown) => e)) as WardenError;
    expect(err).toMatchObject({
      status: 502,
      code: 'http_502',
      message: '<h1>Bad Gateway</h1>',
      field: null,
    });
    expect(seen).toHaveLength(1);
  });

  it('aborting the signal ends a retry wait at once', async () => {
    handler = (_req, res) => json(res, 503, refusal('store_unavailable'), { 'retry-after': '20' });
    const controller = new AbortController();
    const warden = new WardenClient({ baseUrl: base });
    const pending = warden.languages({ signal: controller.signal });
    await expect.poll(() => seen.length).toBe(1);
    controller.abort(new Error('stop waiting'));
    await expect(pending).rejects.toThrow('stop waiting');
    expect(seen).toHaveLength(1);
  });

  it('no server at all is a WardenConnectionError', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const err = await new WardenClient({ baseUrl: `http://127.0.0.1:${port}` })
      .health()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WardenConnectionError);
  });
});

describe('log stream resume', () => {
  it('a dropped stream reconnects with Last-Event-ID and neither loses nor repeats a line', async () => {
    handler = (req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const after = Number(req.headers['last-event-id'] ?? 0);
      if (after === 0) {
        // Two lines, then the connection dies mid-event.
        res.write('retry: 10\n\nid: 1\ndata: {"stream":"stdout","line":"one","time":"t1"}\n\n');
        res.write('id: 2\r\ndata: {"stream":"stderr","line":"two","time":"t2"}\r\n\r\n: keep-alive\n\n');
        res.write('id: 3\ndata: {"stream":"stdout","li');
        setImmediate(() => res.destroy());
        return;
      }
      res.end(
        `id: 3\ndata: {"stream":"stdout","line":"three","time":"t3"}\n\nevent: end\ndata: {"status":"completed"}\n\n`,
      );
    };
    const events = [];
    for await (const e of new WardenClient({ baseUrl: base }).streamLogs('j1')) events.push(e);
    expect(events).toEqual([
      { type: 'line', id: 1, stream: 'stdout', line: 'one', time: 't1' },
      { type: 'line', id: 2, stream: 'stderr', line: 'two', time: 't2' },
      { type: 'line', id: 3, stream: 'stdout', line: 'three', time: 't3' },
      { type: 'end', status: 'completed' },
    ]);
    expect(seen.map((s) => s.headers['last-event-id'])).toEqual([undefined, '2']);
  });

  it('a stream that keeps closing without its end gives up after maxReconnects', async () => {
    handler = (_req, res) => res.writeHead(200, { 'content-type': 'text/event-stream' }).end('retry: 1\n\n');
    const reading = (async () => {
      const stream = new WardenClient({ baseUrl: base }).streamLogs('j1', { maxReconnects: 2 });
      for await (const event of stream) throw new Error(`nothing should arrive: ${JSON.stringify(event)}`);
    })();
    await expect(reading).rejects.toBeInstanceOf(WardenConnectionError);
    expect(seen).toHaveLength(3);
  });
});

describe('artifact downloads', () => {
  it('the API key goes to Warden only, never to the signed URL of another origin', async () => {
    const other = createServer((req, res) => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
      res.end('hello');
    });
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    const elsewhere = `http://localhost:${(other.address() as AddressInfo).port}/bucket/a.txt?sig=x`;
    // sha256("hello")
    const sha = '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824';
    handler = (_req, res) =>
      json(res, 200, [{ path: 'a.txt', size: 5, sha256: sha, url: elsewhere, expires_at: 'x' }]);
    try {
      const files = await new WardenClient({ baseUrl: base, apiKey: 'wdn_secret' }).downloadArtifacts('j1');
      expect(new TextDecoder().decode(files[0]!.bytes)).toBe('hello');
      expect(seen.map((s) => [s.url, s.headers.authorization])).toEqual([
        ['/jobs/j1/artifacts', 'Bearer wdn_secret'],
        ['/bucket/a.txt?sig=x', undefined],
      ]);
    } finally {
      await new Promise<void>((resolve) => other.close(() => resolve()));
    }
  });

  it('bytes that do not match their sha256 are refused', async () => {
    handler = (req, res) => {
      if (req.url === '/jobs/j1/artifacts')
        return json(res, 200, [
          { path: 'a.txt', size: 5, sha256: '00'.repeat(32), url: `${base}/dl/a.txt`, expires_at: 'x' },
        ]);
      res.end('hello');
    };
    const err = (await new WardenClient({ baseUrl: base })
      .downloadArtifacts('j1')
      .catch((e: unknown) => e)) as WardenError;
    expect(err).toMatchObject({ code: 'artifact_corrupt', field: 'path' });
  });
});

describe('a real 429', () => {
  let t: TestServer;
  beforeAll(async () => {
    // A queue that admits nothing: every execution is refused with 429 and Retry-After: 1.
    t = await startTestServer({
      server: { maxQueueDepth: 0, retryAfterSeconds: 1 },
      workers: { inProcess: false },
    });
  });
  afterAll(() => t?.close());

  it('is retried after the server’s Retry-After, then thrown with its code', async () => {
    const warden = new WardenClient({ baseUrl: t.url, retry: { maxRetries: 1 } });
    const err = (await warden
      .execute({ language: 'python', code: 'print(1)' })
      .catch((e: unknown) => e)) as WardenError;
    expect(err).toMatchObject({ status: 429, retryAfterSeconds: 1 });
    expect(err.code).toMatch(/queue_full$/); // the server's queue, or this tenant's share of it
    // The server saw the first try and one retry.
    const metrics = (await call<string>(t.url, 'GET', '/metrics')).body;
    const refused = { route: '/execute', status_code: '429' };
    expect(sample(metrics, 'warden_http_request_duration_seconds_count', refused)).toBe(2);
  });
});
