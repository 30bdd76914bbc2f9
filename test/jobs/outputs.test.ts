import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startTestServer, type TestServer } from '../helpers/server.js';
import { b64, runJob } from './helpers.js';

/**
 * A job that attacks the collection of its outputs and the host's network, in the real sandbox:
 * links to host files and directories, a hard link, a fifo and a 10 GB sparse file in /out; sockets
 * to a listener on the host's loopback. None of the host's bytes may come back, the host files stay
 * as they were, and the service goes on working.
 */

let t: TestServer;
let hostDir: string;
let secret: string;
const SECRET = 'the host secret 7f3a9c';

beforeAll(async () => {
  hostDir = mkdtempSync(join(tmpdir(), 'warden-host-'));
  chmodSync(hostDir, 0o755);
  secret = join(hostDir, 'secret.txt');
  writeFileSync(secret, SECRET, { mode: 0o600 });
  t = await startTestServer({
    jobs: {
      pollMs: 50,
      maxLimits: { timeoutSeconds: 60, cpu: 2, memoryBytes: 2 ** 30, diskBytes: 16 * 2 ** 30 },
    },
  });
});
afterAll(async () => {
  await t?.close();
  rmSync(hostDir, { recursive: true, force: true });
});

const plant = (secretPath: string) =>
  [
    'import os',
    'def attempt(what, f):',
    '    try:',
    '        f()',
    '        print(what, "ok")',
    '    except OSError as e:',
    '        print(what, "refused", e.errno)',
    'os.symlink("/etc/shadow", "/out/shadow")',
    `os.symlink(${JSON.stringify(secretPath)}, "/out/host-secret")`,
    'os.symlink("/", "/out/root")',
    'os.symlink("../..", "/out/up")',
    'os.makedirs("/out/sub")',
    'os.symlink("../../../../../../../etc/passwd", "/out/sub/passwd")',
    `os.symlink(${JSON.stringify(join(secretPath, '..'))}, "/out/sub/hostdir")`,
    'open("/out/mine.txt", "w").write("mine")',
    'os.link("/out/mine.txt", "/out/mine-again.txt")',
    'attempt("hardlink to the runtime", lambda: os.link("/usr/bin/python3", "/out/python3"))',
    'os.mkfifo("/out/fifo")',
    'def sparse():',
    '    with open("/out/sparse.bin", "wb") as f:',
    '        f.truncate(10 * 1024 ** 3)',
    'attempt("sparse", sparse)',
    'attempt("chmod", lambda: os.chmod("/out", 0o777))',
    'open(b"/out/latin-\\xe9", "w").write("a name that is not UTF-8")',
    'os.chmod("/out/sub", 0)',
    'open("/out/ok.txt", "w").write("fine")',
  ].join('\n');

describe('outputs planted to escape the collection', () => {
  it('bring back only the job’s own regular files; links, fifos and huge files are listed as skipped', async () => {
    const before = statSync(secret);
    const done = await runJob(t.url, {
      command: 'python3 plant.py',
      resources: { disk: '12Gi' },
      files: [{ path: 'plant.py', content: b64(plant(secret)) }],
    });
    expect(done.status, JSON.stringify(done)).toBe('completed');
    const log = await (await fetch(`${t.url}/jobs/${done.id}/logs?format=text`)).text();
    expect(log).toContain('sparse ok');
    expect(done.artifacts.map((a) => a.path)).toEqual(['ok.txt']);
    expect(Object.fromEntries(done.skipped.map((s) => [s.path, s.reason]))).toMatchObject({
      shadow: 'symlink',
      'host-secret': 'symlink',
      root: 'symlink',
      up: 'symlink',
      'sub/passwd': 'symlink',
      'sub/hostdir': 'symlink',
      'mine.txt': 'hardlink',
      'mine-again.txt': 'hardlink',
      fifo: 'fifo',
      'sparse.bin': 'too_large',
      'latin-\ufffd': 'invalid_name',
    });
    const links = await call<{ url: string }[]>(t.url, 'GET', `/jobs/${done.id}/artifacts`);
    expect(links.body).toHaveLength(1);
    expect(await (await fetch(links.body[0]!.url)).text()).toBe('fine');

    // The host file is untouched: same bytes, owner and mode.
    const after = statSync(secret);
    expect(readFileSync(secret, 'utf8')).toBe(SECRET);
    expect([after.uid, after.gid, after.mode, after.nlink]).toEqual([before.uid, before.gid, before.mode, 1]);

    // And the service goes on.
    expect((await runJob(t.url, { command: 'echo still here' })).status).toBe('completed');
  });
});

describe('network', () => {
  let listener: Server;
  let port: number;
  let connections = 0;

  beforeAll(async () => {
    listener = createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    port = (listener.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((resolve) => listener.close(() => resolve())));

  it('is off by default: a listener on the host’s loopback receives nothing', async () => {
    const probe = [
      'import socket',
      'for family, addr in [(socket.AF_INET, ("127.0.0.1", PORT)), (socket.AF_INET6, ("::1", PORT))]:',
      '    try:',
      '        s = socket.socket(family, socket.SOCK_STREAM)',
      '        s.settimeout(2)',
      '        s.connect(addr)',
      '        print("connected", addr)',
      '    except OSError as e:',
      '        print("refused", addr[0], e.errno)',
    ]
      .join('\n')
      .replaceAll('PORT', String(port));
    const done = await runJob(t.url, {
      command: 'python3 probe.py',
      files: [{ path: 'probe.py', content: b64(probe) }],
    });
    expect(done.status).toBe('completed');
    const log = await (await fetch(`${t.url}/jobs/${done.id}/logs?format=text`)).text();
    expect(log).toContain('refused 127.0.0.1');
    expect(log).not.toContain('connected');
    expect(connections).toBe(0);
  });

  it('refuses outbound requests when the operator turned them off', async () => {
    const closed = await startTestServer({ jobs: { network: { enabled: false } } });
    try {
      const res = await call<{ error: { field: string } }>(closed.url, 'POST', '/jobs', {
        command: 'curl https://example.org',
        network: { outbound: true, allowed_hosts: ['example.org'] },
      });
      expect(res.status).toBe(400);
      expect(res.body.error.field).toBe('network.outbound');
    } finally {
      await closed.close();
    }
  });
});
