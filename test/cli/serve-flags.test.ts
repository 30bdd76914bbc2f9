import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanup, spawnWarden, tempDir } from '../helpers/processes.js';

const BIN = fileURLToPath(new URL('../../bin/warden.js', import.meta.url));

/** A port nobody listens on right now (the kernel's pick, released at once). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** `warden serve --config F --host H --port P`: the flags a new user reaches for first. */
describe('warden serve flags', () => {
  afterAll(cleanup);

  it('listens where --host and --port say, over the file and WARDEN_PORT, reading serve --config', async () => {
    const [port, envPort] = [await freePort(), await freePort()];
    const serve = await spawnWarden('serve', {
      dataDir: tempDir(),
      // The file says port 0 (any); the environment says another port; the flag wins over both.
      env: { WARDEN_PORT: String(envPort) },
      configAfterCommand: true,
      args: ['--host', '127.0.0.1', '--port', String(port)],
    });
    expect(serve.url).toBe(`http://127.0.0.1:${port}`);
    const health = await fetch(`${serve.url}/health`);
    expect(health.status).toBe(200);
    expect(await serve.stop()).toEqual({ code: 0, signal: null });
  });

  it('refuses a port that is not one, naming the flag (exit 2)', () => {
    for (const port of ['http', '70000', '-1']) {
      const r = spawnSync(process.execPath, [BIN, 'serve', '--port', port], {
        encoding: 'utf8',
        env: { ...process.env, WARDEN_FROM_SOURCE: '1' },
        timeout: 60_000,
      });
      expect(r.status, port).toBe(2);
      expect(r.stderr, port).toContain("option '--port <port>' argument");
    }
  });

  it('names the flag when the config refuses its value', () => {
    const r = spawnSync(process.execPath, [BIN, 'serve', '--host', ''], {
      encoding: 'utf8',
      env: { ...process.env, WARDEN_FROM_SOURCE: '1', WARDEN_DATA_DIR: tempDir() },
      timeout: 60_000,
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('server.host (from --host):');
  });
});
