import type { ConfigFlag } from '../config/load.js';
import { EXIT, readConfig } from './common.js';

export interface ServeOptions {
  config?: string;
  host?: string;
  port?: number;
}

/**
 * `warden serve`: runs until SIGINT/SIGTERM, then shuts down gracefully. `--host` and `--port` win
 * over WARDEN_HOST/WARDEN_PORT and the config file's server.host/server.port.
 */
export async function serveCommand(opts: ServeOptions): Promise<number> {
  const flags: ConfigFlag[] = [];
  if (opts.host !== undefined) flags.push({ key: 'server.host', value: opts.host, flag: '--host' });
  if (opts.port !== undefined) flags.push({ key: 'server.port', value: opts.port, flag: '--port' });
  const config = readConfig(opts.config, flags);
  const { startServer } = await import('../server.js');
  const { NoKeysError } = await import('../api/auth.js');
  const { BackendUnavailableError } = await import('../sandbox/engine.js');
  let server;
  try {
    server = await startServer(config);
  } catch (err) {
    // The configured sandbox backend cannot run here and no sandbox.fallback is set: say why, plainly.
    if (err instanceof BackendUnavailableError) {
      process.stderr.write(`warden: ${err.message}\n`);
      return EXIT.internal;
    }
    if (!(err instanceof NoKeysError)) throw err;
    process.stderr.write(`warden: ${err.message}\n`);
    return EXIT.usage;
  }
  process.stderr.write(
    `warden: listening on ${server.url}\n` +
      `warden: dashboard ${server.url}/ui\n` +
      `warden: API docs ${server.url}/docs (OpenAPI document: ${server.url}/docs/json)\n`,
  );
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await server.close();
  return 0;
}
