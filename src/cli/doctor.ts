import { buildDockerImage } from '../sandbox/backends/docker.js';
import { createEngine } from '../sandbox/engine.js';
import { hostReport } from '../sandbox/host.js';
import { LANGUAGES, languageVersion } from '../languages/index.js';
import { checkServable, describeAuth, NoKeysError } from '../api/auth.js';
import type { WardenConfig } from '../config/schema.js';
import { openStore } from '../store/db.js';
import { EXIT, readConfig } from './common.js';

interface AuthStatus {
  mode: WardenConfig['auth']['mode'];
  detail: string;
  /** Keys that would let a request in (auth.mode keys only). */
  usable_keys?: number;
  /** What would keep clients out, e.g. no key at all. */
  problem?: string;
}

/** How `warden serve` would authenticate callers here, counting the usable keys under auth.mode keys. */
async function authStatus(config: WardenConfig): Promise<AuthStatus> {
  const status: AuthStatus = { mode: config.auth.mode, detail: describeAuth(config) };
  if (config.auth.mode === 'none') return status;
  try {
    const store = await openStore(config);
    try {
      const servable = await checkServable(config, store.db);
      status.usable_keys = servable.usableKeys ?? 0;
      if (servable.warning) status.problem = servable.warning;
    } catch (err) {
      if (!(err instanceof NoKeysError)) throw err;
      status.usable_keys = 0;
      status.problem = `warden serve would refuse to start: ${err.message}`;
    } finally {
      await store.close();
    }
  } catch (err) {
    status.problem = `cannot count the API keys: ${(err as Error).message}`;
  }
  return status;
}

/** `warden doctor`: non-zero exit when the default backend cannot run here. */
export async function doctorCommand(opts: {
  config?: string;
  json?: boolean;
  buildImage?: boolean;
}): Promise<number> {
  const config = readConfig(opts.config);
  if (opts.buildImage) {
    const { socketPath, image } = config.sandbox.docker;
    try {
      const started = performance.now();
      const tag = await buildDockerImage(socketPath, image, (line) =>
        process.stderr.write(`warden: docker image: ${line}\n`),
      );
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      process.stderr.write(`warden: docker image ${tag} is ready (${seconds} s)\n`);
    } catch (err) {
      process.stderr.write(`warden: could not build the docker image: ${(err as Error).message}\n`);
      return EXIT.internal;
    }
  }
  const engine = createEngine({ ...config.sandbox, pool: { ...config.sandbox.pool, size: 0 } });
  const [backends, host] = [await engine.probe(), hostReport(config.sandbox.cgroupParent)];
  await engine.shutdown();
  const runtimes = Object.values(LANGUAGES).map((l) => ({
    language: l.id,
    runtime: l.runtime,
    version: languageVersion(l),
  }));
  const defaultOk = backends.find((b) => b.backend === config.sandbox.backend)?.available ?? false;
  const auth = await authStatus(config);
  if (opts.json) {
    process.stdout.write(
      `${JSON.stringify({ defaultBackend: config.sandbox.backend, defaultOk, backends, host, runtimes, auth }, null, 2)}\n`,
    );
  } else {
    const lines = [
      `host: kernel ${host.kernel} (${host.arch}), running as ${host.root ? 'root' : 'non-root'}`,
      `cgroups: ${host.cgroups.version ? `v${host.cgroups.version}` : 'unavailable'} (${host.cgroups.detail})`,
      `seccomp: ${host.seccomp.available ? 'available' : 'unavailable'}${host.seccomp.killActions ? ', kill_process supported' : ''}; kills on: ${host.seccomp.killedSyscalls.join(', ')}`,
      `user namespaces: ${host.userNamespaces.available ? 'available' : 'unavailable'} (${host.userNamespaces.detail})`,
      'backends:',
      ...backends.map(
        (b) =>
          `  ${b.available ? 'ok  ' : 'FAIL'} ${b.backend.padEnd(8)} isolation=${b.isolation.padEnd(10)} ${b.detail}` +
          (b.backend === config.sandbox.backend ? '  (default)' : '') +
          b.warnings.map((w) => `\n         warning: ${w}`).join(''),
      ),
      'runtimes:',
      ...runtimes.map((r) => `  ${r.language.padEnd(10)} ${r.runtime} ${r.version}`),
      `auth: ${auth.detail}${auth.usable_keys === undefined ? '' : `; ${auth.usable_keys} usable API key(s)`}`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    if (auth.problem) process.stderr.write(`warden: ${auth.problem}\n`);
    if (!defaultOk)
      process.stderr.write(
        `warden: the default backend ${config.sandbox.backend} does not work on this host\n`,
      );
  }
  return defaultOk ? EXIT.ok : EXIT.internal;
}
