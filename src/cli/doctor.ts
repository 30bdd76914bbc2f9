import { createEngine } from '../sandbox/engine.js';
import { hostReport } from '../sandbox/host.js';
import { LANGUAGES, languageVersion } from '../languages/index.js';
import { EXIT, readConfig } from './common.js';

/** `warden doctor`: non-zero exit when the default backend cannot run here. */
export async function doctorCommand(opts: { config?: string; json?: boolean }): Promise<number> {
  const config = readConfig(opts.config);
  const engine = createEngine({ ...config.sandbox, pool: { ...config.sandbox.pool, size: 0 } });
  const [backends, host] = [await engine.probe(), hostReport(config.sandbox.cgroupParent)];
  await engine.shutdown();
  const runtimes = Object.values(LANGUAGES).map((l) => ({
    language: l.id,
    runtime: l.runtime,
    version: languageVersion(l),
  }));
  const defaultOk = backends.find((b) => b.backend === config.sandbox.backend)?.available ?? false;
  if (opts.json) {
    process.stdout.write(
      `${JSON.stringify({ defaultBackend: config.sandbox.backend, defaultOk, backends, host, runtimes }, null, 2)}\n`,
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
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    if (!defaultOk)
      process.stderr.write(
        `warden: the default backend ${config.sandbox.backend} does not work on this host\n`,
      );
  }
  return defaultOk ? EXIT.ok : EXIT.internal;
}
