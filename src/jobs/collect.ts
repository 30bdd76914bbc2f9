import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, open, readdir, type FileHandle } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { finished } from 'node:stream/promises';

/**
 * Collects the regular files a job left in its output dir, as root, without ever acting through a
 * path the job controls (Judge0's CVE-2024-28185/28189 were a symlink in exactly such a dir).
 *
 * Every name is resolved relative to an open descriptor of its parent directory, through
 * `/proc/self/fd/<dir>/<name>` (the kernel's openat by another name): a symlink planted anywhere
 * in the tree is a final component, so O_NOFOLLOW refuses it, and no `..` can climb out because
 * names come from readdir. The kind is checked with lstat before opening (a fifo or device is never
 * opened) and again with fstat after (the same inode, a regular file with one link: a hard link to a
 * file the job did not create is refused). Nothing is ever written, chowned or chmodded. The run's
 * processes are dead by now, so nothing races the walk either.
 */

export type SkipReason =
  | 'symlink'
  | 'hardlink'
  | 'fifo'
  | 'socket'
  | 'device'
  | 'too_large'
  | 'too_many'
  | 'too_deep'
  | 'unreadable'
  | 'invalid_name';

export interface Collected {
  path: string;
  size: number;
  sha256: string;
}

export interface Skipped {
  path: string;
  reason: SkipReason;
}

export interface CollectLimits {
  maxFiles: number;
  maxFileBytes: number;
  maxTotalBytes: number;
  /** Whether the store takes this name (e.g. no control characters); others are skipped. */
  acceptsName?: (path: string) => boolean;
}

/** Takes one artifact's bytes (a stream of exactly `size` bytes). */
export type ArtifactSink = (path: string, body: NodeJS.ReadableStream, size: number) => Promise<void>;

const MAX_DEPTH = 32;
/**
 * Entries looked at beyond the file cap. A job can leave millions of empty files; the walk (and the
 * skipped list stored with the job) stops here, its last entry saying `too_many`.
 */
const MAX_EXTRA_ENTRIES = 1000;
const OPEN_FILE = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY;
const OPEN_DIR = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;

const at = (dir: FileHandle, name: string) => `/proc/self/fd/${dir.fd}/${name}`;

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
function utf8(raw: Buffer): string | undefined {
  try {
    return strictUtf8.decode(raw);
  } catch {
    return undefined;
  }
}

function kindOf(st: {
  isSymbolicLink(): boolean;
  isFIFO(): boolean;
  isSocket(): boolean;
}): SkipReason | null {
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isSocket()) return 'socket';
  return null;
}

export async function collectOutputs(
  root: string,
  limits: CollectLimits,
  sink: ArtifactSink,
): Promise<{ artifacts: Collected[]; skipped: Skipped[] }> {
  const artifacts: Collected[] = [];
  const skipped: Skipped[] = [];
  let total = 0;
  let entries = 0;
  let stopped = false;

  async function copy(file: FileHandle, path: string, size: number): Promise<void> {
    const hash = createHash('sha256');
    let seen = 0;
    // Hashes what passes through on its way to the sink: one read of the file, nothing buffered whole.
    const body = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        seen += chunk.length;
        hash.update(chunk);
        done(null, chunk);
      },
    });
    if (size === 0) body.end();
    else {
      // Exactly the size fstat gave: never more than announced, whatever the file does.
      const source = file.createReadStream({ start: 0, end: size - 1, autoClose: false });
      source.on('error', (err) => body.destroy(err));
      source.pipe(body);
    }
    await sink(path, body, size);
    // The sink may resolve before the last bytes went through (it handed the stream on).
    await finished(body);
    if (seen !== size) throw new Error(`${path}: read ${seen} bytes of ${size}`);
    artifacts.push({ path, size, sha256: hash.digest('hex') });
  }

  /** Whatever the job did to an entry (a name that vanished, a mode root cannot read), it is skipped. */
  const inspect = async <T>(work: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await work();
    } catch {
      return undefined;
    }
  };

  async function visit(dir: FileHandle, name: string, path: string, depth: number): Promise<void> {
    if (limits.acceptsName && !limits.acceptsName(path))
      return void skipped.push({ path, reason: 'invalid_name' });
    const st = await inspect(() => lstat(at(dir, name)));
    if (!st) return void skipped.push({ path, reason: 'unreadable' });
    const special = kindOf(st);
    if (special) return void skipped.push({ path, reason: special });
    if (st.isDirectory()) {
      if (depth >= MAX_DEPTH) return void skipped.push({ path, reason: 'too_deep' });
      const sub = await inspect(() => open(at(dir, name), OPEN_DIR));
      if (!sub) return void skipped.push({ path, reason: 'unreadable' });
      try {
        const again = await inspect(() => sub.stat());
        if (!again?.isDirectory() || again.ino !== st.ino || again.dev !== st.dev)
          return void skipped.push({ path, reason: 'unreadable' });
        await walk(sub, path, depth + 1);
      } finally {
        await sub.close();
      }
      return;
    }
    if (!st.isFile()) return void skipped.push({ path, reason: 'device' });
    if (st.nlink !== 1) return void skipped.push({ path, reason: 'hardlink' });
    if (artifacts.length >= limits.maxFiles) return void skipped.push({ path, reason: 'too_many' });
    if (st.size > limits.maxFileBytes || total + st.size > limits.maxTotalBytes)
      return void skipped.push({ path, reason: 'too_large' });
    let file: FileHandle;
    try {
      file = await open(at(dir, name), OPEN_FILE);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      return void skipped.push({ path, reason: code === 'ELOOP' ? 'symlink' : 'unreadable' });
    }
    try {
      const again = await inspect(() => file.stat());
      if (!again?.isFile() || again.ino !== st.ino || again.dev !== st.dev || again.nlink !== 1)
        return void skipped.push({ path, reason: again && again.nlink !== 1 ? 'hardlink' : 'unreadable' });
      total += again.size;
      await copy(file, path, again.size);
    } finally {
      await file.close();
    }
  }

  async function walk(dir: FileHandle, path: string, depth: number): Promise<void> {
    const names = await inspect(() => readdir(`/proc/self/fd/${dir.fd}`, { encoding: 'buffer' }));
    if (!names) return void skipped.push({ path: path || '.', reason: 'unreadable' });
    const decoded = names
      .map((raw) => ({ raw, text: utf8(raw) }))
      .sort((a, b) => Buffer.compare(a.raw, b.raw));
    for (const { raw, text } of decoded) {
      if (stopped) return;
      const child = `${path ? `${path}/` : ''}${text ?? raw.toString('utf8')}`;
      if (++entries > limits.maxFiles + MAX_EXTRA_ENTRIES) {
        stopped = true;
        return void skipped.push({ path: child, reason: 'too_many' });
      }
      // A name that is not UTF-8 cannot be named in a key or a URL (nor opened by its decoded text).
      if (text === undefined) skipped.push({ path: child, reason: 'invalid_name' });
      else await visit(dir, text, child, depth);
    }
  }

  const top = await open(root, OPEN_DIR);
  try {
    await walk(top, '', 0);
  } finally {
    await top.close();
  }
  return { artifacts, skipped };
}
