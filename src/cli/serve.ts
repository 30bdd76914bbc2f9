import { EXIT, readConfig } from './common.js';

/** `warden serve`: runs until SIGINT/SIGTERM, then shuts down gracefully. */
export async function serveCommand(opts: { config?: string }): Promise<number> {
  const config = readConfig(opts.config);
  const { startServer } = await import('../server.js');
  const { NoKeysError } = await import('../api/auth.js');
  let server;
  try {
    server = await startServer(config);
  } catch (err) {
    if (!(err instanceof NoKeysError)) throw err;
    process.stderr.write(`warden: ${err.message}\n`);
    return EXIT.usage;
  }
  process.stderr.write(`warden: listening on ${server.url}\n`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await server.close();
  return 0;
}
