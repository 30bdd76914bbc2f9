import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sandboxConfigSchema } from '../../src/config/schema.js';
import { startEgressProxy, type EgressConnection, type EgressProxy } from '../../src/jobs/proxy.js';
import { createEngine, type Engine } from '../../src/sandbox/engine.js';

/** A per-job dir the sandbox's host uid can pass through (mkdtemp makes 0700 dirs). */
function searchableTemp(parent: string, prefix: string): string {
  const d = mkdtempSync(join(parent, prefix));
  chmodSync(d, 0o711);
  return d;
}

/** An HTTP server on a loopback address that counts the connections it sees. */
interface Listener {
  port: number;
  connections: number;
  requests: { url: string; headers: IncomingHttpHeaders }[];
  server: Server;
}

async function listen(host: string, name: string): Promise<Listener> {
  const l: Listener = { port: 0, connections: 0, requests: [], server: createServer() };
  l.server.on('connection', () => l.connections++);
  l.server.on('request', (req, res) => {
    l.requests.push({ url: req.url ?? '', headers: req.headers });
    res.end(`hello from ${name}\n`);
  });
  await new Promise<void>((ok) => l.server.listen(0, host, ok));
  l.port = (l.server.address() as AddressInfo).port;
  return l;
}

/** Sends raw bytes to the proxy's unix socket; resolves with everything it answers until it closes. */
function raw(socketPath: string, data: string, keepOpen = false): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(socketPath);
    let out = '';
    s.on('data', (d) => {
      out += d.toString('latin1');
      if (keepOpen && out.includes('\r\n\r\n')) resolve(out);
    });
    s.on('error', reject);
    s.on('close', () => resolve(out));
    s.write(data);
  });
}

describe('egress proxy, job sandboxed in its own network namespace', () => {
  let dir: string;
  let allowed: Listener;
  let unlisted: Listener;
  let blocked: Listener;
  let proxy: EgressProxy;
  let engine: Engine;
  const events: EgressConnection[] = [];

  beforeAll(async () => {
    dir = searchableTemp(tmpdir(), 'warden-egress-');
    allowed = await listen('127.0.0.1', 'allowed');
    unlisted = await listen('127.0.0.2', 'unlisted');
    blocked = await listen('127.0.0.1', 'blocked');
    proxy = await startEgressProxy({
      jobId: 'job-1',
      dir,
      allowedHosts: ['127.0.0.1', '169.254.169.254', '*.example.com'],
      blockedPorts: [22, 25, 3306, 5432, 6379, blocked.port],
      // The test's loopback server must be reachable; nothing else private is.
      allowPrivate: ['127.0.0.1/32'],
      onConnection: (e) => events.push(e),
    });
    engine = createEngine(sandboxConfigSchema.parse({ pool: { size: 0 } }));
  });
  afterAll(async () => {
    await proxy?.close();
    await engine?.shutdown();
    for (const l of [allowed, unlisted, blocked]) l?.server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const script = String.raw`
import json, socket, subprocess, sys
A, B, C = sys.argv[1:4]
def curl(*args):
    p = subprocess.run(["/usr/bin/curl", "-sS", "-m", "10", "-w", "|%{http_code}", *args], capture_output=True, text=True)
    return {"rc": p.returncode, "out": p.stdout, "err": p.stderr}
res = {
    "plain": curl("http://127.0.0.1:%s/plain" % A),
    "tunnel": curl("-p", "http://127.0.0.1:%s/tunnel" % A),
    "unlisted": curl("http://127.0.0.2:%s/" % B),
    "blocked_port": curl("-p", "http://127.0.0.1:%s/" % C),
    "metadata": curl("http://169.254.169.254/latest/meta-data/"),
    "no_proxy": curl("--noproxy", "*", "http://127.0.0.1:%s/direct" % A),
    "socks": curl("--proxy", "socks5h://127.0.0.1:3128", "http://127.0.0.1:%s/socks" % A),
    "socks_refused": curl("--proxy", "socks5h://127.0.0.1:3128", "http://127.0.0.2:%s/" % B),
}
direct = {}
for name, host, port in (("allowed", "127.0.0.1", A), ("unlisted", "127.0.0.2", B), ("metadata", "169.254.169.254", "80")):
    s = socket.socket()
    s.settimeout(3)
    try:
        s.connect((host, int(port)))
        direct[name] = "connected"
    except OSError as e:
        direct[name] = "%s errno=%s" % (type(e).__name__, e.errno)
    finally:
        s.close()
res["direct"] = direct
print(json.dumps(res))
`;

  it('reaches the allowed host only through the proxy; the rest is refused and logged', async () => {
    const result = await engine.run({
      argv: proxy.wrapArgv([
        '/usr/bin/python3',
        '-I',
        '/box/t.py',
        String(allowed.port),
        String(unlisted.port),
        String(blocked.port),
      ]),
      files: [{ path: 't.py', content: script }],
      env: proxy.env,
      ...proxy.sandbox,
      limits: { wallTimeMs: 60_000, cpuTimeMs: 30_000 },
    });
    expect(result.status, result.stderr + result.error).toBe('success');
    const res = JSON.parse(result.stdout) as Record<string, { rc: number; out: string; err: string }> & {
      direct: Record<string, string>;
    };
    expect(res.plain!.out).toBe('hello from allowed\n|200');
    expect(res.tunnel!.out).toBe('hello from allowed\n|200');
    expect(res.unlisted!.out).toMatch(/not on the job's allowed_hosts.*\|403$/s);
    // A refused CONNECT: curl reports the proxy's 403 and gives up.
    expect(res.blocked_port!.rc).not.toBe(0);
    expect(res.blocked_port!.err).toMatch(/403/);
    expect(res.socks!.out).toBe('hello from allowed\n|200');
    expect(res.socks_refused!.rc).not.toBe(0);
    expect(res.socks_refused!.err).toMatch(/not allowed|refused|Connection/i);
    expect(res.metadata!.out).toMatch(/169\.254\.169\.254 is link-local.*\|403$/s);
    // Without the proxy, and with raw sockets, nothing outside the namespace answers.
    expect(res.no_proxy!.rc).not.toBe(0);
    expect(res.direct.allowed).toMatch(/ConnectionRefusedError/);
    expect(res.direct.unlisted).toMatch(/ConnectionRefusedError/);
    expect(res.direct.metadata).toMatch(/errno=(101|113|111)|timeout/);

    // The listeners saw exactly the three proxied requests, and nothing else.
    expect(allowed.connections).toBe(3);
    expect(allowed.requests.map((r) => r.url)).toEqual(['/plain', '/tunnel', '/socks']);
    expect(allowed.requests[0]!.headers.connection).toBe('close');
    expect(unlisted.connections).toBe(0);
    expect(blocked.connections).toBe(0);

    const seen = events.map((e) => ({
      host: e.host,
      port: e.port,
      allowed: e.allowed,
      reason: e.reason ?? '',
    }));
    expect(seen).toEqual([
      { host: '127.0.0.1', port: allowed.port, allowed: true, reason: '' },
      { host: '127.0.0.1', port: allowed.port, allowed: true, reason: '' },
      {
        host: '127.0.0.2',
        port: unlisted.port,
        allowed: false,
        reason: expect.stringMatching(/allowed_hosts/),
      },
      {
        host: '127.0.0.1',
        port: blocked.port,
        allowed: false,
        reason: expect.stringMatching(/port .* blocked/),
      },
      { host: '169.254.169.254', port: 80, allowed: false, reason: expect.stringMatching(/link-local/) },
      { host: '127.0.0.1', port: allowed.port, allowed: true, reason: '' },
      {
        host: '127.0.0.2',
        port: unlisted.port,
        allowed: false,
        reason: expect.stringMatching(/allowed_hosts/),
      },
    ]);
    expect(events.every((e) => e.jobId === 'job-1')).toBe(true);
    expect(events[0]!.address).toBe('127.0.0.1');
  });

  it("the job's namespace has a loopback interface only, and no raw or netlink sockets", async () => {
    const probe = String.raw`
import socket
names = [l.split(":")[0].strip() for l in open("/proc/net/dev").read().splitlines()[2:]]
out = {"interfaces": names}
for fam in ("AF_NETLINK", "AF_PACKET"):
    try:
        socket.socket(getattr(socket, fam), socket.SOCK_RAW, 0).close()
        out[fam] = "created"
    except OSError as e:
        out[fam] = e.errno
print(out)
`;
    const result = await engine.run({
      argv: proxy.wrapArgv(['/usr/bin/python3', '-I', '-c', probe]),
      ...proxy.sandbox,
    });
    expect(result.stdout.trim()).toBe("{'interfaces': ['lo'], 'AF_NETLINK': 97, 'AF_PACKET': 97}");
  });

  it('the bridge passes the command its exit status, signals and stdin, and dies with it', async () => {
    const exit = await engine.run({
      argv: proxy.wrapArgv([
        '/usr/bin/python3',
        '-c',
        'import sys; print(sys.stdin.read().upper()); sys.exit(7)',
      ]),
      stdin: 'abc',
      env: proxy.env,
      ...proxy.sandbox,
    });
    expect(exit).toMatchObject({ status: 'failed', exitCode: 7, stdout: 'ABC\n' });
    const killed = await engine.run({
      argv: proxy.wrapArgv([
        '/usr/bin/python3',
        '-c',
        'import os, signal; os.kill(os.getpid(), signal.SIGKILL)',
      ]),
      env: proxy.env,
      ...proxy.sandbox,
    });
    expect(killed).toMatchObject({ exitCode: null, signal: 'SIGKILL' });
    const missing = await engine.run({
      argv: proxy.wrapArgv(['/usr/bin/no-such-program']),
      ...proxy.sandbox,
    });
    expect(missing).toMatchObject({ exitCode: 127 });
    expect(missing.stderr).toMatch(/cannot start/);
    // The command ignores no signal (the Python bridge ignores SIGPIPE and SIGXFSZ itself).
    const ignored = await engine.run({
      argv: proxy.wrapArgv(['/usr/bin/grep', 'SigIgn', '/proc/self/status']),
      ...proxy.sandbox,
    });
    expect(ignored.stdout).toMatch(/^SigIgn:\s+0+\n$/);
  });
});

describe('egress proxy on the host side', () => {
  let dir: string;
  let target: Listener;
  beforeAll(async () => {
    dir = searchableTemp(tmpdir(), 'warden-egress-');
    target = await listen('127.0.0.1', 'target');
  });
  afterAll(() => {
    target?.server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function withProxy(
    options: Partial<Parameters<typeof startEgressProxy>[0]>,
    body: (p: EgressProxy, events: EgressConnection[]) => Promise<void>,
  ): Promise<void> {
    const events: EgressConnection[] = [];
    const p = await startEgressProxy({
      jobId: 'job-2',
      dir: searchableTemp(dir, 'job-'),
      allowedHosts: ['127.0.0.1', 'localhost'],
      blockedPorts: [],
      allowPrivate: ['127.0.0.1/32'],
      onConnection: (e) => events.push(e),
      ...options,
    });
    try {
      await body(p, events);
    } finally {
      await p.close();
    }
  }

  it('refuses an oversized or late request head', async () => {
    await withProxy({ maxHeaderBytes: 1024, headerTimeoutMs: 300 }, async (p, events) => {
      const big = await raw(
        p.socketPath,
        `GET http://127.0.0.1:${target.port}/ HTTP/1.1\r\nX: ${'a'.repeat(2000)}`,
      );
      expect(big).toMatch(/^HTTP\/1\.1 431 /);
      const slow = await raw(p.socketPath, 'GET http://127.0.0.1/ HTTP/1.1\r\n');
      expect(slow).toMatch(/^HTTP\/1\.1 408 /);
      expect(events[0]).toMatchObject({ allowed: false, reason: 'request head too large' });
    });
    expect(target.connections).toBe(0);
  });

  it('caps the tunnels open at once', async () => {
    await withProxy({ maxConnections: 1 }, async (p, events) => {
      const first = await raw(p.socketPath, `CONNECT 127.0.0.1:${target.port} HTTP/1.1\r\n\r\n`, true);
      expect(first).toMatch(/^HTTP\/1\.1 200 /);
      const second = await raw(p.socketPath, `CONNECT 127.0.0.1:${target.port} HTTP/1.1\r\n\r\n`);
      expect(second).toMatch(/^HTTP\/1\.1 503 /);
      expect(events.map((e) => e.allowed)).toEqual([true, false]);
    });
  });

  it('a name resolving to loopback is refused unless allowPrivate lists the name or every address', async () => {
    await withProxy({ allowPrivate: [] }, async (p, events) => {
      const answer = await raw(
        p.socketPath,
        `GET http://localhost:${target.port}/ HTTP/1.1\r\nHost: x\r\n\r\n`,
      );
      expect(answer).toMatch(/^HTTP\/1\.1 403 /);
      expect(events[0]).toMatchObject({
        host: 'localhost',
        allowed: false,
        reason: expect.stringMatching(/loopback/),
      });
    });
    const before = target.connections;
    await withProxy({ allowPrivate: ['localhost'] }, async (p, events) => {
      const answer = await raw(
        p.socketPath,
        `GET http://LOCALHOST.:${target.port}/x HTTP/1.1\r\nHost: x\r\n\r\n`,
      );
      expect(answer).toMatch(/^HTTP\/1\.1 200 [\s\S]*hello from target/);
      expect(events[0]).toMatchObject({ host: 'localhost', allowed: true });
    });
    expect(target.connections).toBe(before + 1);
  });

  it('speaks SOCKS5 on the same socket: no-auth CONNECT by name or address, refusals as SOCKS replies', async () => {
    const socks = (request: Buffer, then = ''): Promise<Buffer> =>
      new Promise((resolve, reject) => {
        const chunks: Buffer[] = [];
        const s = connect(socketPathOf!);
        s.on('data', (d) => {
          chunks.push(d);
          // After the method choice and the reply, send the tunnelled bytes.
          if (then && Buffer.concat(chunks).length === 12) s.write(then);
        });
        s.on('error', reject);
        s.on('close', () => resolve(Buffer.concat(chunks)));
        s.write(Buffer.concat([Buffer.from([5, 1, 0]), request]));
      });
    const port = Buffer.alloc(2);
    port.writeUInt16BE(target.port);
    const byName = Buffer.concat([Buffer.from([5, 1, 0, 3, 9]), Buffer.from('127.0.0.1'), port]);
    const byV4 = Buffer.concat([Buffer.from([5, 1, 0, 1, 127, 0, 0, 1]), port]);
    const metadata = Buffer.concat([Buffer.from([5, 1, 0, 1, 169, 254, 169, 254]), port]);
    const v6loopback = Buffer.concat([Buffer.from([5, 1, 0, 4]), Buffer.alloc(15), Buffer.from([1]), port]);
    const bind = Buffer.concat([Buffer.from([5, 2, 0, 1, 127, 0, 0, 1]), port]);
    let socketPathOf: string | undefined;
    await withProxy({ allowedHosts: ['127.0.0.1', '169.254.169.254', '::1'] }, async (p, events) => {
      socketPathOf = p.socketPath;
      const get = 'GET /s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';
      for (const request of [byName, byV4]) {
        const answer = await socks(request, get);
        expect([...answer.subarray(0, 4)]).toEqual([5, 0, 5, 0]);
        expect(answer.subarray(12).toString()).toContain('hello from target');
      }
      expect([...(await socks(metadata)).subarray(2, 4)]).toEqual([5, 2]);
      expect([...(await socks(v6loopback)).subarray(2, 4)]).toEqual([5, 2]);
      expect([...(await socks(bind)).subarray(2, 4)]).toEqual([5, 7]);
      expect(events.map((e) => [e.host, e.allowed])).toEqual([
        ['127.0.0.1', true],
        ['127.0.0.1', true],
        ['169.254.169.254', false],
        ['::1', false],
        ['', false],
      ]);
    });
  });

  it('close() ends open tunnels and removes the socket', async () => {
    let socketPath = '';
    await withProxy({}, async (p) => {
      socketPath = p.socketPath;
      const tunnel = connect(p.socketPath);
      await new Promise<void>((ok) => {
        tunnel.on('data', () => ok());
        tunnel.write(`CONNECT 127.0.0.1:${target.port} HTTP/1.1\r\n\r\n`);
      });
      const ended = new Promise<void>((ok) => tunnel.on('close', () => ok()));
      await p.close();
      await ended;
    });
    await expect(raw(socketPath, 'x')).rejects.toThrow(/ENOENT/);
  });
});
