import { linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectOutputs, type ArtifactSink } from '../../src/jobs/collect.js';

/**
 * The collector on an output dir planted by hand (as a job would, but with host files within reach,
 * which a sandboxed job never has): it must take the job's regular files and nothing else.
 */

let dir: string;
let out: string;
let secret: string;
const SECRET = 'host secret bytes 0xC0FFEE';
const LARGE = randomBytes(3 * 1024 * 1024 + 7);

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'warden-collect-'));
  secret = join(dir, 'secret.txt');
  writeFileSync(secret, SECRET);
  out = join(dir, 'out');
  mkdirSync(join(out, 'nested', 'deeper'), { recursive: true });
  writeFileSync(join(out, 'a.txt'), 'alpha');
  writeFileSync(join(out, 'large.bin'), LARGE);
  writeFileSync(join(out, 'nested', 'deeper', 'b.bin'), Buffer.from([0, 1, 2, 255]));
  writeFileSync(join(out, 'empty'), '');
  symlinkSync(secret, join(out, 'to-secret'));
  symlinkSync('/etc/shadow', join(out, 'shadow'));
  symlinkSync('/', join(out, 'root'));
  symlinkSync('../..', join(out, 'nested', 'up'));
  symlinkSync(dir, join(out, 'dir-link'));
  linkSync(secret, join(out, 'hard-secret'));
  spawnSync('/usr/bin/mkfifo', [join(out, 'fifo')]);
  writeFileSync(join(out, 'sparse'), '');
  truncateSync(join(out, 'sparse'), 10 * 2 ** 30);
  writeFileSync(join(out, 'bad\nname'), 'x');
  writeFileSync(Buffer.concat([Buffer.from(`${out}/`), Buffer.from([0x6e, 0xff, 0xfe])]), 'not utf-8');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function memorySink(): { sink: ArtifactSink; files: Map<string, Buffer> } {
  const files = new Map<string, Buffer>();
  return {
    files,
    sink: async (path, body, size) => {
      // A sink that starts reading late (an upload connecting first) must still get every byte.
      await new Promise((r) => setTimeout(r, 5));
      const chunks: Buffer[] = [];
      for await (const chunk of body) chunks.push(chunk as Buffer);
      const bytes = Buffer.concat(chunks);
      expect(bytes.length).toBe(size);
      files.set(path, bytes);
    },
  };
}

describe('collecting /out', () => {
  it('takes regular files only, and lists every other entry with the reason', async () => {
    const { sink, files } = memorySink();
    const result = await collectOutputs(
      out,
      {
        maxFiles: 10,
        maxFileBytes: 4 * 1024 * 1024,
        maxTotalBytes: 10 * 1024 * 1024,
        acceptsName: (p) => !p.includes('\n'),
      },
      sink,
    );
    expect(result.artifacts.map((a) => a.path)).toEqual([
      'a.txt',
      'empty',
      'large.bin',
      'nested/deeper/b.bin',
    ]);
    expect(files.get('large.bin')?.equals(LARGE)).toBe(true);
    expect(result.artifacts[2]?.sha256).toBe(createHash('sha256').update(LARGE).digest('hex'));
    expect(files.get('a.txt')?.toString()).toBe('alpha');
    expect(files.get('nested/deeper/b.bin')).toEqual(Buffer.from([0, 1, 2, 255]));
    expect(files.get('empty')?.length).toBe(0);
    expect(result.artifacts[0]).toMatchObject({
      size: 5,
      sha256: '8ed3f6ad685b959ead7022518e1af76cd816f8e8ec7ccdda1ed4018e8f2223f8',
    });
    expect(Object.fromEntries(result.skipped.map((s) => [s.path, s.reason]))).toEqual({
      'bad\nname': 'invalid_name',
      'n\ufffd\ufffd': 'invalid_name',
      'dir-link': 'symlink',
      fifo: 'fifo',
      'hard-secret': 'hardlink',
      'nested/up': 'symlink',
      root: 'symlink',
      shadow: 'symlink',
      sparse: 'too_large',
      'to-secret': 'symlink',
    });
    for (const bytes of files.values()) expect(bytes.toString()).not.toContain('host secret');
  });

  it('stops at the file count and total size caps', async () => {
    const { sink } = memorySink();
    const few = await collectOutputs(out, { maxFiles: 1, maxFileBytes: 1024, maxTotalBytes: 1024 }, sink);
    expect(few.artifacts.map((a) => a.path)).toEqual(['a.txt']);
    expect(few.skipped).toContainEqual({ path: 'nested/deeper/b.bin', reason: 'too_many' });
    const small = await collectOutputs(out, { maxFiles: 10, maxFileBytes: 1024, maxTotalBytes: 6 }, sink);
    expect(small.artifacts.map((a) => a.path)).toEqual(['a.txt', 'bad\nname', 'empty']);
    expect(small.skipped).toContainEqual({ path: 'nested/deeper/b.bin', reason: 'too_large' });
  });

  it('stops walking a flood of entries, keeping the list bounded', async () => {
    const flood = join(dir, 'flood');
    mkdirSync(flood);
    for (let i = 0; i < 1500; i++) writeFileSync(join(flood, `f${String(i).padStart(4, '0')}`), '');
    const { sink } = memorySink();
    const result = await collectOutputs(flood, { maxFiles: 10, maxFileBytes: 1, maxTotalBytes: 1 }, sink);
    expect(result.artifacts).toHaveLength(10);
    expect(result.skipped).toHaveLength(1001);
    expect(result.skipped.every((s) => s.reason === 'too_many')).toBe(true);
  });

  it('waits for every byte when the sink hands the stream on and resolves at once', async () => {
    let bytes = 0;
    const result = await collectOutputs(
      out,
      { maxFiles: 10, maxFileBytes: 4 * 1024 * 1024, maxTotalBytes: 10 * 1024 * 1024 },
      async (_path, body) => {
        body.on('data', (chunk: Buffer) => (bytes += chunk.length));
      },
    );
    expect(result.artifacts.find((a) => a.path === 'large.bin')?.size).toBe(LARGE.length);
    expect(bytes).toBe(result.artifacts.reduce((n, a) => n + a.size, 0));
  });

  it('refuses an output dir that is itself a symlink', async () => {
    const link = join(dir, 'out-link');
    symlinkSync(out, link);
    await expect(
      collectOutputs(link, { maxFiles: 1, maxFileBytes: 1, maxTotalBytes: 1 }, memorySink().sink),
    ).rejects.toThrow(/ELOOP|ENOTDIR/);
  });
});
