import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A callback receiver for tests: a real HTTP server recording every request it gets. */
export interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface Receiver {
  url: string;
  port: number;
  received: Received[];
  /** Answers the next requests (default 200). */
  respond: (handler: (req: Received, res: ServerResponse) => void) => void;
  close(): Promise<void>;
}

export async function startReceiver(host: string): Promise<Receiver> {
  const received: Received[] = [];
  let handler: (req: Received, res: ServerResponse) => void = (_req, res) => {
    res.writeHead(200).end('ok');
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r = { path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      received.push(r);
      handler(r, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}`,
    port,
    received,
    respond: (h) => {
      handler = h;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** What a receiver does with the README's scheme: recompute and compare in constant time. */
export function verify(secret: string, r: Received, maxAgeSeconds = 300): boolean {
  const timestamp = String(r.headers['x-warden-timestamp'] ?? '');
  const given = String(r.headers['x-warden-signature'] ?? '');
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > maxAgeSeconds) return false;
  const expected = `sha256=${createHmac('sha256', secret).update(`${timestamp}.${r.body}`).digest('hex')}`;
  return given.length === expected.length && timingSafeEqual(Buffer.from(given), Buffer.from(expected));
}
