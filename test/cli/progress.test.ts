import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Docker from 'dockerode';
import { afterAll, describe, expect, it } from 'vitest';
import { until } from '../helpers/wait.js';

const ROOT_DIR = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT_DIR, 'bin/warden.js');

const docker = new Docker({ socketPath: '/var/run/docker.sock' });
const available =
  process.getuid?.() === 0 &&
  (await docker.ping().then(
    () => true,
    () => false,
  ));
const image = `warden-progress-${process.pid}`;

/** setup.sh's start: strict mode, its `log`, the progress helpers. */
const PRELUDE = 'set -euo pipefail; log() { echo "[setup] $*" >&2; }; source scripts/lib/progress.sh;';

/** Runs `script` in bash with setup.sh's progress helpers loaded (a beat every second). */
function withProgress(script: string) {
  return spawnSync('bash', ['-c', `${PRELUDE} ${script}`], {
    cwd: ROOT_DIR,
    encoding: 'utf8',
    env: { ...process.env, STEP_BEAT_SECONDS: '1' },
    timeout: 60_000,
  });
}

/** Long operations say what they are doing while they do it. */
describe('progress of long operations', () => {
  it('a set-up step beats while it runs and says when it is done', async () => {
    // The step runs until the test lets it end, once a beat was seen: no timing involved.
    const flag = join(mkdtempSync(join(tmpdir(), 'warden-progress-')), 'go');
    const child = spawn(
      'bash',
      ['-c', `${PRELUDE} step "waiting" bash -c 'until [ -e ${flag} ]; do sleep 0.05; done'; echo after`],
      {
        cwd: ROOT_DIR,
        env: { ...process.env, STEP_BEAT_SECONDS: '1' },
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    await until(() => (/still working/.test(stderr) ? true : undefined), 30_000, 50, 'a progress line');
    writeFileSync(flag, '');
    expect(await exited).toBe(0);
    const lines = stderr.trim().split('\n');
    expect(lines[0]).toBe('[setup] waiting…');
    expect(lines[1]).toMatch(/^\[setup\] {3}waiting: still working \(\d+ s\)$/);
    expect(lines.at(-1)).toMatch(/^\[setup\] waiting: done in \d+ s$/);
    expect(stdout).toBe('after\n'); // the step's own output is kept out of the way
  });

  it('a failing set-up step stops the script with its status and shows its output', () => {
    const r = withProgress('step "breaking" bash -c "echo first; echo why it broke >&2; exit 7"; echo never');
    expect(r.status).toBe(7);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('[setup] breaking failed (exit 7); its last lines:\nfirst\nwhy it broke\n');
  });

  describe.runIf(available)('with Docker', () => {
    afterAll(async () => {
      for (const found of await docker.listImages({ filters: { reference: [image] } }))
        await docker.getImage(found.Id).remove({ force: true });
    });

    it('warden doctor --build-image tells what it imports and when it is ready', () => {
      const dir = mkdtempSync(join(tmpdir(), 'warden-progress-'));
      const config = join(dir, 'warden.yaml');
      writeFileSync(config, `dataDir: ${dir}\nsandbox:\n  docker:\n    image: ${image}\n`);
      const r = spawnSync(process.execPath, [BIN, '--config', config, 'doctor', '--build-image', '--json'], {
        encoding: 'utf8',
        env: { ...process.env, WARDEN_FROM_SOURCE: '1' },
        timeout: 120_000,
      });
      expect(r.stderr).toMatch(
        new RegExp(`^warden: docker image: importing ${image}:[0-9a-f]{12} \\(\\d+ KiB\\)$`, 'm'),
      );
      expect(r.stderr).toMatch(
        new RegExp(`^warden: docker image ${image}:[0-9a-f]{12} is ready \\(\\d+\\.\\d s\\)$`, 'm'),
      );
      expect(JSON.parse(r.stdout)).toHaveProperty('backends'); // the report stays clean JSON on stdout
    });
  });
});
