import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { reportUnavailable, sandboxBackends } from '../sandbox/helpers.js';

/** `warden job run`: one job on this machine, the log on the terminal, artifacts into --out. */

const BIN = fileURLToPath(new URL('../../bin/warden.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'warden-jobcli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const backends = await sandboxBackends();
reportUnavailable('warden job run', backends.unavailable, it);

function warden(args: string[], backend = 'bwrap') {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    cwd: dir,
    env: {
      ...process.env,
      WARDEN_FROM_SOURCE: '1',
      WARDEN_DATA_DIR: join(dir, '.warden'),
      WARDEN_BACKEND: backend,
    },
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('warden job run', () => {
  it.each(backends.available)(
    'runs the command with its files and environment, and copies /out into --out (on %s)',
    (backend) => {
      rmSync(join(dir, 'results'), { recursive: true, force: true });
      writeFileSync(
        join(dir, 'make.py'),
        'import os\nprint("making", os.environ["K"])\nos.makedirs("/out/d")\nopen("/out/d/r.txt", "w").write("R=" + os.environ["K"])\n',
      );
      const r = warden(
        ['job', 'run', '--file', 'make.py', '--env', 'K=V', '--out', 'results', '--', 'python3', 'make.py'],
        backend,
      );
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe('making V\n');
      expect(r.stderr).toContain('[warden] artifact d/r.txt (3 bytes)');
      expect(r.stderr).toMatch(/\[warden\] job completed exit=0/);
      expect(readFileSync(join(dir, 'results', 'd', 'r.txt'), 'utf8')).toBe('R=V');
    },
  );

  it('exits 3 when the job fails and 2 for a program off the allow-list', () => {
    const failed = warden(['job', 'run', '--', 'python3', '-c', 'import sys; sys.exit(4)']);
    expect(failed.code).toBe(3);
    expect(failed.stderr).toMatch(/job failed exit=4/);
    const refused = warden(['job', 'run', '--', 'bash', '-c', 'id']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/command: "bash" is not an allowed program/);
  });
});
