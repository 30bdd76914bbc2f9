import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const BIN = fileURLToPath(new URL('../../bin/warden.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'warden-stdin-'));
const hello = join(dir, 'hello.py');
writeFileSync(hello, 'import sys\nprint("hello", repr(sys.stdin.read()))\n');
const env = { ...process.env, WARDEN_FROM_SOURCE: '1' };

/** `echo world | warden run hello.py`: what is piped into warden reaches the program. */
describe('warden run with a piped stdin', () => {
  it('forwards a shell pipe and a redirected file', () => {
    const piped = spawnSync('/bin/sh', ['-c', `echo world | "${process.execPath}" "${BIN}" run "${hello}"`], {
      encoding: 'utf8',
      env,
      timeout: 60_000,
    });
    expect(piped.status).toBe(0);
    expect(piped.stdout).toBe("hello 'world\\n'\n");
    const input = join(dir, 'in.txt');
    writeFileSync(input, 'from a file');
    const redirected = spawnSync(
      '/bin/sh',
      ['-c', `"${process.execPath}" "${BIN}" run "${hello}" < "${input}"`],
      {
        encoding: 'utf8',
        env,
        timeout: 60_000,
      },
    );
    expect(redirected.stdout).toBe("hello 'from a file'\n");
  });

  it('forwards what a parent process writes to it (a socket), and --stdin wins over it', () => {
    const fromParent = spawnSync(process.execPath, [BIN, 'run', hello], {
      input: 'données\u0000',
      encoding: 'utf8',
      env,
      timeout: 60_000,
    });
    expect(fromParent.stdout).toBe("hello 'données\\x00'\n");
    const file = join(dir, 'given.txt');
    writeFileSync(file, 'given');
    const given = spawnSync(process.execPath, [BIN, 'run', hello, '--stdin', file], {
      input: 'ignored',
      encoding: 'utf8',
      env,
      timeout: 60_000,
    });
    expect(given.stdout).toBe("hello 'given'\n");
  });
});
