import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, sample, startTestServer, type TestServer } from '../helpers/server.js';
import { reportUnavailable, sandboxBackends } from '../sandbox/helpers.js';
import { b64, runJob } from './helpers.js';

/**
 * Outbound network of a job, end to end: the job's own network namespace, the bridge, the egress
 * proxy on the host with the job's allow-list. Three HTTP servers on the host's loopback (which this
 * server's config lets the proxy reach): the allowed host gets the request; a host off the list and
 * a blocked port get nothing, and a direct socket around the proxy reaches nothing. On every
 * isolation backend this machine has.
 */

const backends = await sandboxBackends();
reportUnavailable('jobs with outbound network', backends.unavailable, it);

const servers: { server: Server; port: number; hits: number }[] = [];

async function listen(): Promise<(typeof servers)[number]> {
  const entry = { server: createServer(), port: 0, hits: 0 };
  entry.server.on('request', (_req, res) => {
    entry.hits++;
    res.end(`hello from ${entry.port}`);
  });
  await new Promise<void>((resolve) => entry.server.listen(0, '127.0.0.1', resolve));
  entry.port = (entry.server.address() as { port: number }).port;
  servers.push(entry);
  return entry;
}

afterAll(() => {
  for (const s of servers) s.server.close();
});

const PROBE = `
import socket, sys, urllib.request, urllib.error
allowed, other, blocked = (int(p) for p in sys.argv[1:4])
def get(name, url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            print(name, "status", r.status, r.read().decode())
    except urllib.error.HTTPError as e:
        print(name, "refused", e.code)
    except Exception as e:
        print(name, "error", type(e).__name__)
get("allowed", "http://localhost:%d/" % allowed)
get("other", "http://127.0.0.1:%d/" % other)
get("blocked", "http://localhost:%d/" % blocked)
try:
    socket.create_connection(("127.0.0.1", allowed), timeout=3)
    print("direct connected")
except OSError as e:
    print("direct refused", e.errno)
`;

describe.each(backends.available)('a job with outbound network on %s', (backend) => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({
      sandbox: { backend },
      jobs: { pollMs: 50, network: { allowPrivate: ['127.0.0.0/8', '::1/128'] } },
    });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('reaches its allowed host through the proxy, and nothing else', async () => {
    const [allowed, other, blocked] = [await listen(), await listen(), await listen()];
    const done = await runJob(t.url, {
      command: `python3 probe.py ${allowed.port} ${other.port} ${blocked.port}`,
      network: { outbound: true, allowed_hosts: ['localhost'], blocked_ports: [blocked.port] },
      files: [{ path: 'probe.py', content: b64(PROBE) }],
    });
    expect(done.status, JSON.stringify(done)).toBe('completed');
    const log = await (await fetch(`${t.url}/jobs/${done.id}/logs?format=text`)).text();
    expect(log).toContain(`allowed status 200 hello from ${allowed.port}`);
    expect(log).toMatch(/other refused 403/);
    expect(log).toMatch(/blocked refused 403/);
    expect(log).toMatch(/direct refused \d+/);
    expect([allowed.hits, other.hits, blocked.hits]).toEqual([1, 0, 0]);

    const metrics = (await call(t.url, 'GET', '/metrics')).body as unknown as string;
    expect(sample(metrics, 'warden_job_egress_connections_total', { result: 'allowed' })).toBe(1);
    expect(sample(metrics, 'warden_job_egress_connections_total', { result: 'refused' })).toBe(2);
  });
});
