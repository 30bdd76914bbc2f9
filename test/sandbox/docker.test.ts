import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { doctorCommand } from '../../src/cli/doctor.js';
import { LANGUAGES, buildRun, languageSandbox } from '../../src/languages/index.js';
import { createMetrics } from '../../src/metrics.js';
import { buildDockerImage } from '../../src/sandbox/backends/docker.js';
import { OWNER } from '../../src/sandbox/backends/docker-owner.js';
import type { Engine } from '../../src/sandbox/engine.js';
import { startContainerMonitor } from '../../src/sandbox/monitor.js';
import { call, startTestServer } from '../helpers/server.js';
import { NOTHING_LEFT, runCode, settledLeftovers, sleep, testEngine } from './helpers.js';

/**
 * The docker backend's own behaviour beyond the attack suite (which runs against it too): runs ended
 * from outside, leftovers of a crashed service and of finished runs, and a daemon that goes away.
 */
const SOCKET = '/var/run/docker.sock';
const docker = new Docker({ socketPath: SOCKET });
const ROOT = process.getuid?.() === 0;
const available =
  ROOT &&
  (await docker.ping().then(
    () => true,
    () => false,
  ));

/** Containers whose owner label names process `pid`. */
async function owned(pid: number): Promise<Docker.ContainerInfo[]> {
  const all = await docker.listContainers({ all: true, filters: { label: ['warden.owner'] } });
  return all.filter((c) => c.Labels['warden.owner']?.split('/')[1] === String(pid));
}

/** Polls an async condition (bounded; no fixed sleep as synchronisation). */
async function until(probe: () => Promise<boolean>, ms = 20_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > deadline) return false;
    await sleep(100);
  }
  return true;
}

describe.runIf(available)('docker backend', () => {
  let engine: Engine;
  beforeAll(() => {
    engine = testEngine({ backend: 'docker' });
  });
  afterAll(async () => {
    await engine?.shutdown();
  });

  it('a container killed from outside mid-run ends it as error with the reason, nothing left', async () => {
    let up!: () => void;
    const printed = new Promise<void>((resolve) => (up = resolve));
    const run = engine.run({
      ...(await buildRun(LANGUAGES.python, 'import time\nprint("up", flush=True)\ntime.sleep(60)\n', {
        limits: { wallTimeMs: 60_000 },
      })),
      onOutput: () => up(),
    });
    await printed;
    const mine = await owned(process.pid);
    expect(mine).toHaveLength(1);
    await docker.getContainer(mine[0]!.Id).kill();
    const r = await run;
    expect(r.status).toBe('error');
    expect(r.error).toMatch(/killed from outside Warden/);
    await engine.settle();
    expect(await owned(process.pid)).toEqual([]);
  });

  it('a missing image is named in the probe with the command that builds it', async () => {
    const other = testEngine({ docker: { image: `warden-test-missing-${process.pid}` } });
    try {
      const probe = (await other.probe()).find((p) => p.backend === 'docker');
      expect(probe?.available).toBe(false);
      expect(probe?.detail).toMatch(
        /image warden-test-missing-\d+:\w+ is missing \(build it: warden doctor --build-image\)/,
      );
    } finally {
      await other.shutdown();
    }
  });

  it("a setup failure inside the container is Warden's error, not the program's failure", async () => {
    // A file where the next one needs a directory: the wrapper cannot extract them, the program never starts.
    const r = await engine.run({
      argv: ['/bin/echo', 'never'],
      files: [
        { path: 'a', content: 'x' },
        { path: 'a/b', content: 'y' },
      ],
    });
    expect(r.status).toBe('error');
    expect(r.error).toMatch(/files not written/);
    expect(r.stdout).toBe('');
  });

  it('a container left over after its run is removed by the next sweep, and counted', async () => {
    expect((await runCode(engine, 'python', 'print(1)')).status).toBe('success');
    await engine.settle();
    expect(await owned(process.pid)).toEqual([]);
    // What a release that never happened leaves: a container of this live service, of no live run.
    const image = await buildDockerImage(SOCKET, 'warden-sandbox');
    await docker.createContainer({
      Image: image,
      Cmd: ['/bin/true'],
      Labels: { 'warden.owner': OWNER, 'warden.sandbox': `${process.pid}-over`, 'warden.backend': 'docker' },
      HostConfig: { NetworkMode: 'none' },
    });
    expect(await owned(process.pid)).toHaveLength(1);
    const metrics = createMetrics();
    const monitor = startContainerMonitor(engine, {
      intervalMs: 300,
      onRemoved: (backend, removed) => metrics.observeOrphans(backend, removed.length),
    });
    try {
      expect(await until(async () => (await owned(process.pid)).length === 0)).toBe(true);
    } finally {
      await monitor.stop();
    }
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/warden_orphans_removed_total\{backend="docker"\} 1/);
  });

  it("a run naming docker on a bwrap service is served by docker's pool, which leaves nothing at shutdown", async () => {
    const service = testEngine({ backend: 'bwrap', pool: { size: 1 }, pools: { docker: { size: 1 } } });
    try {
      service.prewarm(languageSandbox(LANGUAGES.python), 1);
      // The first run on docker starts cold and opens that backend's pool.
      const first = await runCode(service, 'python', 'print(1)', { backend: 'docker' });
      expect(first).toMatchObject({ status: 'success', backend: 'docker', pooled: false });
      expect(await service.poolReady(60_000)).toBe(true);
      expect(service.poolSizes()).toMatchObject({ python: 1, 'docker/python': 1 });
      const second = await runCode(service, 'python', 'print(2)', { backend: 'docker' });
      expect(second).toMatchObject({ status: 'success', stdout: '2\n', backend: 'docker', pooled: true });
    } finally {
      await service.shutdown();
    }
    expect(await owned(process.pid)).toEqual([]);
    expect(await settledLeftovers()).toEqual(NOTHING_LEFT);
  });

  it('the service SIGKILLed with 10 containers alive: the next start removes them all', async () => {
    const script = fileURLToPath(new URL('./docker-service.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const ready = await new Promise<boolean>((resolve) => {
      child.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve(true));
      child.once('exit', () => resolve(false));
    });
    expect(ready).toBe(true);
    const pid = child.pid!;
    const gone = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await gone;
    expect((await owned(pid)).filter((c) => c.State === 'running')).toHaveLength(10);
    // The next start: a new engine's start-up sweep, as the worker does it.
    const next = testEngine({ backend: 'docker' });
    try {
      await startContainerMonitor(next, { intervalMs: 60_000 }).sweep();
      expect(await owned(pid)).toEqual([]);
      const leases = readdirSync('/run/warden/uids').map((f) =>
        readFileSync(join('/run/warden/uids', f), 'utf8'),
      );
      expect(leases).not.toContain(String(pid));
    } finally {
      await next.shutdown();
    }
  }, 180_000);
});

describe.runIf(available)('the Docker daemon goes away', () => {
  let dir: string;
  let proxy: ReturnType<typeof createServer>;
  const sockets = new Set<Socket>();
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-docker-'));
    // The daemon as this test's service sees it: a socket of our own in front of the real one, so
    // "stopping the daemon" takes nothing away from other processes using Docker.
    proxy = createServer((client) => {
      const upstream = connect(SOCKET);
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('error', () => {});
        s.on('close', () => sockets.delete(s));
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => proxy.listen(join(dir, 'docker.sock'), resolve));
  });
  afterAll(() => {
    for (const s of sockets) s.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('/health answers 503 naming the docker backend, doctor says so, bwrap runs go on', async () => {
    const t = await startTestServer({
      sandbox: { backend: 'docker', pool: { size: 0 }, docker: { socketPath: join(dir, 'docker.sock') } },
    });
    try {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
      const health = await call<{
        checks: {
          backend: { ok: boolean; backends: { backend: string; available: boolean; detail: string }[] };
        };
      }>(t.url, 'GET', '/health');
      expect(health.status).toBe(503);
      expect(health.body.checks.backend.ok).toBe(false);
      const dockerProbe = health.body.checks.backend.backends.find((b) => b.backend === 'docker');
      expect(dockerProbe).toMatchObject({ available: false });
      expect(dockerProbe?.detail).toMatch(/Docker daemon unreachable/);
      const bwrap = testEngine();
      try {
        const r = await runCode(bwrap, 'python', 'print(6 * 7)');
        expect(r).toMatchObject({ status: 'success', stdout: '42\n', backend: 'bwrap' });
      } finally {
        await bwrap.shutdown();
      }
    } finally {
      await t.close();
    }
    const config = join(dir, 'warden.json');
    writeFileSync(
      config,
      JSON.stringify({ sandbox: { backend: 'docker', docker: { socketPath: join(dir, 'docker.sock') } } }),
    );
    let printed = '';
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string) => ((printed += chunk), true)) as typeof process.stdout.write;
    try {
      await doctorCommand({ config });
    } finally {
      process.stdout.write = write;
    }
    expect(printed).toMatch(/FAIL docker .*Docker daemon unreachable/);
  }, 120_000);
});
