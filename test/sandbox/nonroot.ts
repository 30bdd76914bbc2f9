import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { LAUNCHER } from '../../src/sandbox/spawner.js';
import type { RunResult, RunSpec, SandboxSpec } from '../../src/sandbox/types.js';

/** What nonroot-run.ts does: an engine of this config, optionally a pool of one, then these runs. */
export interface NonRootJob {
  runtimeDir: string;
  config: unknown;
  prewarm?: SandboxSpec;
  runs: (Omit<RunSpec, 'payload'> & { payload: string })[];
}

export type NonRoot =
  | { run(job: Omit<NonRootJob, 'runtimeDir'>): RunResult[]; dispose(): void }
  | { skip: string; dispose(): void };

const NOBODY = ['/usr/bin/setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--'];

/**
 * Runs the engine as an unprivileged user (uid 65534): user namespaces only, no cgroups, rlimits.
 * That user may not be able to read the repository (a checkout under a 0700 directory, as CI
 * runners and many workspaces have), so the runner is bundled into one file in a directory of its
 * own under the system temp dir. Where even that is out of the user's reach (node itself under a
 * private directory, a private temp dir), the caller gets the reason to skip with.
 */
export async function prepareNonRoot(): Promise<NonRoot> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-nonroot-'));
  chmodSync(dir, 0o777);
  const dispose = () => rmSync(dir, { recursive: true, force: true });
  // The bundle sits where the spawner's module would (src/sandbox/), so the launcher it looks for at
  // ../../build/warden-launch is the copy made here, within the user's reach.
  const bundle = join(dir, 'src', 'sandbox', 'nonroot-run.mjs');
  mkdirSync(join(dir, 'build'), { mode: 0o755 });
  copyFileSync(LAUNCHER, join(dir, 'build', 'warden-launch'));
  chmodSync(join(dir, 'build', 'warden-launch'), 0o755);
  await build({
    entryPoints: [fileURLToPath(new URL('./nonroot-run.ts', import.meta.url))],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile: bundle,
    // Loaded only by the docker backend, on first use (its ssh2 dependency has native parts).
    external: ['dockerode'],
    logLevel: 'silent',
  });
  chmodSync(bundle, 0o644);
  const reach = spawnSync(
    NOBODY[0]!,
    [...NOBODY.slice(1), process.execPath, '-e', `require('fs').accessSync(${JSON.stringify(bundle)})`],
    { cwd: dir, env: { PATH: '/usr/bin:/bin' }, encoding: 'utf8' },
  );
  if (reach.status !== 0) {
    return {
      dispose,
      skip: `uid 65534 cannot run ${process.execPath} on ${bundle}: ${reach.stderr.trim() || reach.error}`,
    };
  }
  return {
    dispose,
    run(job) {
      const r = spawnSync(NOBODY[0]!, [...NOBODY.slice(1), process.execPath, bundle], {
        cwd: dir,
        env: { PATH: '/usr/bin:/bin', HOME: dir },
        input: JSON.stringify({ ...job, runtimeDir: join(dir, 'run') }),
        encoding: 'utf8',
        timeout: 60_000,
      });
      if (r.status !== 0) throw new Error(`non-root engine failed (${r.status ?? r.signal}): ${r.stderr}`);
      return JSON.parse(r.stdout) as RunResult[];
    },
  };
}

/** A RunSpec as the job carries it (the payload base64). */
export function asJobRun(spec: RunSpec): NonRootJob['runs'][number] {
  return { ...spec, payload: Buffer.from(spec.payload ?? '').toString('base64') };
}
