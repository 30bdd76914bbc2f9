import http from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import type { CheckedTarget } from './target.js';

/**
 * One HTTP POST of a callback to an address that was checked: the connection goes to that address
 * (the socket's lookup answers with it, so no second DNS query happens), while Host and TLS (SNI,
 * certificate name) still use the URL's host. Redirects are never followed: a 3xx is an answer like
 * any other non-2xx. The whole attempt has one deadline; the response body is read up to a cap and
 * thrown away.
 */

export interface PostOutcome {
  statusCode: number | null;
  error: string | null;
  durationMs: number;
}

export interface PostOptions {
  timeoutMs: number;
  maxResponseBytes: number;
  headers: Record<string, string>;
}

/** Answers every lookup with the checked address, whatever name is asked. */
function pinnedLookup(address: string): LookupFunction {
  const family = isIP(address);
  return ((_host: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) => {
    if (options?.all) callback(null, [{ address, family }]);
    else callback(null, address, family);
  }) as unknown as LookupFunction;
}

export function post(target: CheckedTarget, body: string, options: PostOptions): Promise<PostOutcome> {
  const started = performance.now();
  const address = target.addresses[0]!;
  const secure = target.url.protocol === 'https:';
  return new Promise<PostOutcome>((resolve) => {
    let settled = false;
    const finish = (statusCode: number | null, error: string | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      request.destroy();
      resolve({ statusCode, error, durationMs: performance.now() - started });
    };
    const request = (secure ? https : http).request({
      method: 'POST',
      // An IP-literal host is connected to as it is; a name goes through the pinned lookup.
      host: target.host,
      port: target.port,
      path: `${target.url.pathname}${target.url.search}`,
      headers: {
        ...options.headers,
        host: target.url.host,
        'content-type': 'application/json',
        'content-length': String(Buffer.byteLength(body)),
      },
      // Credentials in the URL (`https://user:pass@host/`) become Basic authentication, as curl does.
      ...(target.url.username
        ? {
            auth: `${decodeURIComponent(target.url.username)}:${decodeURIComponent(target.url.password)}`,
          }
        : {}),
      lookup: pinnedLookup(address),
      agent: false,
      ...(secure && !isIP(target.host) ? { servername: target.host } : {}),
    });
    const timer = setTimeout(
      () => finish(null, `no answer within ${options.timeoutMs} ms`),
      options.timeoutMs,
    );
    request.once('error', (err: NodeJS.ErrnoException) => finish(null, err.code ?? err.message));
    request.once('response', (res) => {
      const statusCode = res.statusCode ?? null;
      let read = 0;
      res.on('data', (chunk: Buffer) => {
        read += chunk.length;
        if (read > options.maxResponseBytes) finish(statusCode, null);
      });
      res.once('end', () => finish(statusCode, null));
      res.once('error', () => finish(statusCode, null));
    });
    request.end(body);
  });
}
