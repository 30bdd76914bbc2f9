import { lookup } from 'node:dns/promises';
import { chmodSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { connect, createServer, isIP, type Socket } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import type { SandboxSpec } from '../sandbox/types.js';
import { BRIDGE_PORT, SANDBOX_SOCKET_DIR, bridgeArgv } from './bridge.js';
import { parseGreeting, parseRequest, reply, SOCKS_REPLY, SOCKS_VERSION } from './proxy-socks.js';
import {
  addressRefusal,
  hostAllowed,
  normaliseHost,
  parseAllowPrivate,
  parseHostPattern,
  type HostPattern,
} from './proxy-policy.js';

/**
 * The per-job egress proxy (SPEC §7): an HTTP proxy (CONNECT for TLS, absolute-URI requests for
 * plain HTTP) on a unix socket that is bound into the job's sandbox, where a bridge turns it into
 * 127.0.0.1:3128 of the job's private network namespace. It resolves every name itself, checks the
 * job's allow-list, the blocked ports and the addresses, and connects to exactly the address it
 * checked (a second lookup could answer differently: DNS rebinding).
 */

/** One connection the job asked for, allowed or not. */
export interface EgressConnection {
  jobId: string;
  host: string;
  port: number;
  /** The address connected to (allowed), or the one that was refused. */
  address?: string;
  allowed: boolean;
  /** Why it was refused, or why an allowed connection could not be made. */
  reason?: string;
}

export interface EgressProxyOptions {
  jobId: string;
  /** A directory of this job's; the proxy makes `egress/` in it. Its ancestors must be searchable (o+x). */
  dir: string;
  /** Exact names and `*.suffix` wildcards (case-insensitive, trailing dot ignored), or IP literals. */
  allowedHosts: readonly string[];
  /** Every port to refuse: the configured list plus the job's own. */
  blockedPorts: readonly number[];
  /** `jobs.network.allowPrivate`: CIDRs or names that may be reached although not public. */
  allowPrivate: readonly string[];
  onConnection(event: EgressConnection): void;
  /** Open tunnels at once; past it a request is refused (503). Default 64. */
  maxConnections?: number;
  /** A tunnel quiet in both directions this long is closed. Default 120 s. */
  idleTimeoutMs?: number;
  /** The request head must arrive within this, and fit in maxHeaderBytes. Defaults 10 s, 16 KiB. */
  headerTimeoutMs?: number;
  maxHeaderBytes?: number;
  /** Default 10 s. */
  connectTimeoutMs?: number;
}

export interface EgressProxy {
  /** The proxy's unix socket on the host. */
  socketPath: string;
  /** For the job: every proxy variable common tools read, pointing at the bridge. */
  env: Record<string, string>;
  /** What the sandbox needs: its own network namespace with loopback, and the socket's directory. */
  sandbox: Pick<SandboxSpec, 'network' | 'binds'>;
  /** The job's argv behind the bridge: the bridge listens first, then starts the command. */
  wrapArgv(argv: readonly string[]): string[];
  close(): Promise<void>;
}

const DEFAULTS = {
  maxConnections: 64,
  idleTimeoutMs: 120_000,
  headerTimeoutMs: 10_000,
  maxHeaderBytes: 16 * 1024,
  connectTimeoutMs: 10_000,
};

class Refusal extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly host = '',
    readonly port = 0,
    readonly address?: string,
    /** The SOCKS reply for this refusal; by default derived from the HTTP status. */
    socksReply?: number,
  ) {
    super(message);
    this.socksReply =
      socksReply ??
      (status === 403
        ? SOCKS_REPLY.notAllowed
        : status === 502
          ? SOCKS_REPLY.hostUnreachable
          : SOCKS_REPLY.generalFailure);
  }
  readonly socksReply: number;
}

interface Target {
  host: string;
  port: number;
  /** For plain HTTP: the request head to send upstream (origin-form, Connection: close). */
  head?: Buffer;
}

/** `host:port` of CONNECT, with `[v6]:port` too. */
function authority(text: string, defaultPort?: number): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(text);
  const port = m?.[2] !== undefined ? Number(m[2]) : defaultPort;
  if (!m || port === undefined || port < 1 || port > 65_535)
    throw new Refusal(400, `bad target ${JSON.stringify(text)}`);
  return { host: m[1]!, port };
}

/** Hop-by-hop headers, and Host: the checked URL's authority replaces it (no other virtual host). */
const DROPPED = /^(host|proxy-connection|proxy-authorization|connection|keep-alive|te|trailer|upgrade)\s*:/i;

/** Parses a request head (up to the blank line) into where it goes and what to send there. */
export function parseRequestHead(head: string): Target {
  const [requestLine = '', ...headers] = head.split('\r\n');
  const m = /^([A-Z]+) (\S+) (HTTP\/1\.[01])$/.exec(requestLine);
  if (!m) throw new Refusal(400, 'not an HTTP/1.x proxy request');
  const [, method, target, version] = m as unknown as [string, string, string, string];
  if (method === 'CONNECT') return authority(target);
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    throw new Refusal(400, 'a proxy request names an absolute http:// URL (or uses CONNECT)');
  }
  if (url.protocol !== 'http:' || !target.toLowerCase().startsWith('http://'))
    throw new Refusal(400, `only http:// URLs and CONNECT are proxied, not ${url.protocol}`);
  if (url.username || url.password) throw new Refusal(400, 'credentials in the URL are not forwarded');
  const { host, port } = authority(url.host, 80);
  const kept = headers.filter((h) => h !== '' && !DROPPED.test(h));
  const lines = [
    `${method} ${url.pathname}${url.search} ${version}`,
    `Host: ${url.host}`,
    ...kept,
    'Connection: close',
    '',
    '',
  ];
  return { host, port, head: Buffer.from(lines.join('\r\n'), 'latin1') };
}

function answer(socket: Socket, status: number, message: string): void {
  const reason =
    {
      400: 'Bad Request',
      403: 'Forbidden',
      408: 'Request Timeout',
      431: 'Request Header Fields Too Large',
      502: 'Bad Gateway',
      503: 'Service Unavailable',
    }[status] ?? 'Error';
  const body = `warden egress proxy: ${message}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/** Ancestors the sandbox's unprivileged host user cannot search make bwrap fail to bind the socket. */
function checkSearchable(dir: string): void {
  if (process.getuid?.() !== 0) return;
  for (let d = resolve(dir); ; d = dirname(d)) {
    if ((statSync(d).mode & 0o001) === 0) {
      throw new Error(
        `egress proxy: ${d} is not searchable by other users (o+x); the sandbox could not reach the socket`,
      );
    }
    if (d === dirname(d)) return;
  }
}

export async function startEgressProxy(options: EgressProxyOptions): Promise<EgressProxy> {
  const o = { ...DEFAULTS, ...options };
  const patterns = options.allowedHosts.map((h) => {
    const p = parseHostPattern(h);
    if (!p) throw new Error(`allowed host ${JSON.stringify(h)} is not a host name, *.suffix or IP address`);
    return p;
  }) satisfies HostPattern[];
  const blocked = new Set(options.blockedPorts);
  const allowPrivate = parseAllowPrivate(options.allowPrivate);
  const socketDir = join(options.dir, 'egress');
  // The sandbox backend hands this directory to the run's host uid: only the run and root get in.
  mkdirSync(socketDir, { recursive: true, mode: 0o700 });
  checkSearchable(options.dir);
  const socketPath = join(socketDir, 'proxy.sock');
  rmSync(socketPath, { force: true });

  const sockets = new Set<Socket>();
  let tunnels = 0;
  const report = (event: Omit<EgressConnection, 'jobId'>) => {
    try {
      options.onConnection({ jobId: options.jobId, ...event });
    } catch {
      // A failing hook must not take the job's connection (or the proxy) down with it.
    }
  };

  /** The checks, in order, taking a tunnel slot; the addresses returned are the ones to connect to. */
  async function decide(target: Target): Promise<string[]> {
    const host = normaliseHost(target.host);
    if (!host)
      throw new Refusal(400, `invalid host ${JSON.stringify(target.host)}`, target.host, target.port);
    if (blocked.has(target.port)) throw new Refusal(403, `port ${target.port} is blocked`, host, target.port);
    if (!hostAllowed(host, patterns))
      throw new Refusal(403, `${host} is not on the job's allowed_hosts`, host, target.port);
    if (tunnels >= o.maxConnections)
      throw new Refusal(503, `more than ${o.maxConnections} connections at once`, host, target.port);
    // The slot is taken now, so requests resolving at the same time cannot all pass the cap.
    tunnels++;
    try {
      return await resolveChecked(host, target.port);
    } catch (err) {
      tunnels--;
      throw err;
    }
  }

  async function resolveChecked(host: string, port: number): Promise<string[]> {
    let addresses: string[];
    try {
      addresses = isIP(host)
        ? [host]
        : (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);
    } catch (err) {
      throw new Refusal(
        502,
        `cannot resolve ${host}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
        host,
        port,
      );
    }
    // One bad address refuses the name: a name resolving to a public and a private address is how a
    // rebinding attack would look.
    for (const address of addresses) {
      const why = addressRefusal(host, address, allowPrivate);
      if (why) throw new Refusal(403, why, host, port, address);
    }
    if (addresses.length === 0) throw new Refusal(502, `${host} has no address`, host, port);
    return addresses;
  }

  function dial(addresses: string[], port: number): Promise<{ upstream: Socket; address: string }> {
    return new Promise((resolveDial, reject) => {
      const attempt = (i: number, lastError?: Error) => {
        const address = addresses[i];
        if (address === undefined) return reject(lastError ?? new Error('no address'));
        const upstream = connect({ host: address, port });
        const timer = setTimeout(() => upstream.destroy(new Error('connect timeout')), o.connectTimeoutMs);
        upstream.once('connect', () => {
          clearTimeout(timer);
          upstream.removeAllListeners('error');
          resolveDial({ upstream, address });
        });
        upstream.once('error', (err) => {
          clearTimeout(timer);
          upstream.destroy();
          attempt(i + 1, err);
        });
      };
      attempt(0);
    });
  }

  /** How a protocol tells the client "refused" and "connected". */
  interface Dialect {
    refuse(client: Socket, refusal: Refusal): void;
    connected(client: Socket, target: Target): void;
  }
  const httpDialect: Dialect = {
    refuse: (client, r) => answer(client, r.status, r.message),
    // A plain request's head goes upstream instead; CONNECT hears that its tunnel is up.
    connected: (client, target) => {
      if (!target.head) client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    },
  };
  const socksDialect: Dialect = {
    refuse: (client, r) => void client.end(reply(r.socksReply ?? SOCKS_REPLY.notAllowed)),
    connected: (client) => void client.write(reply(SOCKS_REPLY.succeeded)),
  };

  async function serve(client: Socket, parse: () => Target, rest: Buffer, dialect: Dialect): Promise<void> {
    let target: Target | undefined;
    let addresses: string[];
    try {
      target = parse();
      addresses = await decide(target);
    } catch (err) {
      const r = err instanceof Refusal ? err : new Refusal(400, 'bad request');
      report({
        host: r.host || target?.host || '',
        port: r.port || target?.port || 0,
        address: r.address,
        allowed: false,
        reason: r.message,
      });
      return dialect.refuse(client, r);
    }
    const host = normaliseHost(target.host)!;
    let dialed: { upstream: Socket; address: string };
    try {
      dialed = await dial(addresses, target.port);
    } catch (err) {
      tunnels--;
      const reason = `cannot connect: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
      report({ host, port: target.port, address: addresses[0], allowed: true, reason });
      return dialect.refuse(
        client,
        new Refusal(502, reason, host, target.port, undefined, SOCKS_REPLY.connectionRefused),
      );
    }
    const { upstream, address } = dialed;
    report({ host, port: target.port, address, allowed: true });
    sockets.add(upstream);
    let closed = false;
    const finish = () => {
      if (closed) return;
      closed = true;
      tunnels--;
      sockets.delete(upstream);
      client.destroy();
      upstream.destroy();
    };
    for (const s of [client, upstream]) {
      s.setTimeout(o.idleTimeoutMs, finish);
      s.on('error', finish);
      s.on('close', finish);
    }
    if (client.destroyed) return finish();
    if (target.head) upstream.write(target.head);
    dialect.connected(client, target);
    if (rest.length > 0) upstream.write(rest);
    client.pipe(upstream);
    upstream.pipe(client);
    client.resume();
  }

  /** HTTP: the head up to the blank line, bounded in size and time. */
  function readHttp(client: Socket, first: Buffer): void {
    let buffered = first;
    const onData = (chunk?: Buffer) => {
      if (chunk) buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf('\r\n\r\n');
      if (end === -1 && buffered.length <= o.maxHeaderBytes) return;
      client.off('data', onData);
      client.pause();
      client.setTimeout(0);
      if (end === -1 || end > o.maxHeaderBytes) {
        report({ host: '', port: 0, allowed: false, reason: 'request head too large' });
        return answer(client, 431, `request head larger than ${o.maxHeaderBytes} bytes`);
      }
      const head = buffered.subarray(0, end).toString('latin1');
      void serve(client, () => parseRequestHead(head), buffered.subarray(end + 4), httpDialect);
    };
    client.on('data', onData);
    onData();
  }

  /** SOCKS5: greeting (no authentication), then one CONNECT request. */
  function readSocks(client: Socket, first: Buffer): void {
    let buffered = first;
    let greeted = false;
    const onData = (chunk?: Buffer) => {
      if (chunk) buffered = Buffer.concat([buffered, chunk]);
      if (!greeted) {
        const greeting = parseGreeting(buffered);
        if (!greeting) return;
        if (!greeting.noAuth) {
          client.off('data', onData);
          report({
            host: '',
            port: 0,
            allowed: false,
            reason: 'SOCKS client offers no "no authentication" method',
          });
          return void client.end(Buffer.from([SOCKS_VERSION, 0xff]));
        }
        greeted = true;
        buffered = buffered.subarray(greeting.used);
        client.write(Buffer.from([SOCKS_VERSION, 0]));
      }
      const request = parseRequest(buffered);
      if (!request) return;
      client.off('data', onData);
      client.pause();
      client.setTimeout(0);
      const rest = 'used' in request ? buffered.subarray(request.used) : Buffer.alloc(0);
      const parse = (): Target => {
        if ('error' in request) throw new Refusal(400, request.message, '', 0, undefined, request.error);
        return { host: request.host, port: request.port };
      };
      void serve(client, parse, rest, socksDialect);
    };
    client.on('data', onData);
    onData();
  }

  const server = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());
    let socks = false;
    client.setTimeout(o.headerTimeoutMs, () =>
      socks ? client.destroy() : answer(client, 408, 'request head not received in time'),
    );
    // One port, two protocols: SOCKS5 opens with its version byte, HTTP with a method name.
    client.once('data', (first: Buffer) => {
      socks = first[0] === SOCKS_VERSION;
      if (socks) readSocks(client, first);
      else readHttp(client, first);
    });
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(socketPath, () => ok());
  });
  // The run's host uid is another user: the directory, not the socket's mode, keeps others out.
  chmodSync(socketPath, 0o666);

  const proxyUrl = `http://127.0.0.1:${BRIDGE_PORT}`;
  let closing: Promise<void> | undefined;
  return {
    socketPath,
    env: {
      HTTP_PROXY: proxyUrl,
      HTTPS_PROXY: proxyUrl,
      ALL_PROXY: proxyUrl,
      http_proxy: proxyUrl,
      https_proxy: proxyUrl,
      all_proxy: proxyUrl,
      NO_PROXY: '',
      no_proxy: '',
    },
    sandbox: {
      network: { enabled: false, loopback: true },
      binds: [{ source: socketDir, dest: SANDBOX_SOCKET_DIR }],
    },
    wrapArgv: (argv) => bridgeArgv(argv),
    close() {
      closing ??= (async () => {
        const closed = new Promise<void>((ok) => server.close(() => ok()));
        for (const s of sockets) s.destroy();
        await closed;
        rmSync(socketDir, { recursive: true, force: true });
      })();
      return closing;
    },
  };
}
