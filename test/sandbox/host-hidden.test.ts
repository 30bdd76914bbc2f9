import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { LANGUAGES, languageSandbox } from '../../src/languages/index.js';
import { runCode, testEngine } from './helpers.js';

/**
 * Inside the sandbox nothing names the host: its pid 1 shows no host paths, its mount table names no
 * host directory behind a mount, and host-wide /proc files about the machine are empty.
 */

const REPO = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');
const RUNTIME_DIR = process.getuid?.() === 0 ? '/run/warden' : `${process.cwd()}/.warden/run`;

const READ_ALL = [
  'import json',
  'out = {}',
  'for p in ["/proc/1/cmdline", "/proc/self/mountinfo", "/proc/cmdline", "/proc/swaps", "/proc/partitions", "/proc/sys/kernel/random/boot_id", "/proc/mounts"]:',
  '    try:',
  '        out[p] = open(p, "rb").read().decode("utf8", "replace")',
  '    except OSError as e:',
  '        out[p] = "error %d" % e.errno',
  'print(json.dumps(out))',
].join('\n');

const engine = testEngine({ pool: { size: 1, perLanguage: {}, maxIdleMs: 60_000 } });
afterAll(() => engine.shutdown());

describe.each([false, true])('seen from inside (pooled: %s)', (pooled) => {
  it('pid 1, mountinfo and host-wide /proc files name nothing of the host', async () => {
    if (pooled) {
      engine.prewarm(languageSandbox(LANGUAGES.python), 1);
      expect(await engine.poolReady(20_000)).toBe(true);
    }
    const r = await runCode(engine, 'python', READ_ALL);
    expect(r).toMatchObject({ status: 'success', pooled });
    const seen = JSON.parse(r.stdout) as Record<string, string>;
    const everything = Object.values(seen).join('\n');
    for (const hostPath of [RUNTIME_DIR, REPO, '/run/', '/oldroot'])
      expect(everything).not.toContain(hostPath);

    // pid 1 is bwrap's init, started with its options on a descriptor: no host path in its argv.
    expect(seen['/proc/1/cmdline']?.split('\0')[0]).toBe('/usr/bin/bwrap');
    expect(seen['/proc/1/cmdline']).not.toMatch(/--(ro-)?bind\b/);

    // Every mount's root within its filesystem is its own mount point, a device node of /dev, a tmpfs
    // of bwrap's, or a deleted placeholder file: nothing says where on the host a mount comes from.
    for (const line of seen['/proc/self/mountinfo']!.trim().split('\n')) {
      const [, , , root = '', mountPoint = ''] = line.split(' ');
      const neutral =
        [mountPoint, '/', '/newroot'].includes(root) ||
        `/dev${root}` === mountPoint ||
        /^\/bindfile\w+\/\/deleted$/.test(root);
      expect(neutral, line).toBe(true);
    }

    // Host-wide files are readable and empty (runtimes that open them do not fail).
    const hostCmdline = readFileSync('/proc/cmdline', 'utf8').trim();
    expect(hostCmdline.length).toBeGreaterThan(0);
    for (const masked of [
      '/proc/cmdline',
      '/proc/swaps',
      '/proc/partitions',
      '/proc/sys/kernel/random/boot_id',
    ])
      expect(seen[masked]).toBe('');
    expect(everything).not.toContain(hostCmdline);
  });
});
