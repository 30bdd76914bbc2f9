import { randomBytes } from 'node:crypto';
import { constants, mkdirSync, readdirSync, realpathSync, rmSync, type ReadStream } from 'node:fs';
import { mkdir, open, realpath, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { ArtifactStore } from './index.js';
import { keySegments, normalisePrefix } from './keys.js';
import type { UrlSigner } from './signing.js';

export const DOWNLOAD_ROUTE_PREFIX = '/artifacts/';

/** The local store also serves its downloads (GET /artifacts/*): these are the route's two steps. */
export interface LocalArtifactStore extends ArtifactStore {
  readonly kind: 'local';
  /** Whether (key, expires, sig) came from signedUrl() and has not expired. Touches no file. */
  verify(key: string, expiresAtSeconds: number, signature: string, now?: Date): 'ok' | 'invalid' | 'expired';
  /** The object's bytes, or null when it is gone (or is anything but a regular file we wrote). */
  openObject(key: string): Promise<{ stream: ReadStream; size: number } | null>;
}

/** `a b/ü.txt` → `a%20b/%C3%BC.txt`: each segment encoded, the slashes kept. */
export function encodeKeyPath(key: string): string {
  return keySegments(key).map(encodeURIComponent).join('/');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Uploads whose process died mid-way (named `<pid>-…`); other live processes' uploads stay. */
function removeAbandonedUploads(incoming: string): void {
  for (const name of readdirSync(incoming)) {
    const pid = Number(/^(\d+)-/.exec(name)?.[1]);
    if (!Number.isInteger(pid) || pid === process.pid || !alive(pid)) {
      rmSync(join(incoming, name), { force: true, recursive: true });
    }
  }
}

/**
 * Objects live under `<dir>/objects/<key>`, uploads in progress under `<dir>/incoming/` until a
 * rename publishes them whole: a reader never sees a half-written artifact, whatever crashes.
 */
export function createLocalStore(dir: string, signer: UrlSigner): LocalArtifactStore {
  const objects = join(dir, 'objects');
  const incoming = join(dir, 'incoming');
  mkdirSync(objects, { recursive: true, mode: 0o700 });
  mkdirSync(incoming, { recursive: true, mode: 0o700 });
  removeAbandonedUploads(incoming);
  const objectsReal = realpathSync(objects);

  return {
    kind: 'local',

    async put(key, body, size) {
      const target = join(objects, ...keySegments(key));
      const temp = join(incoming, `${process.pid}-${randomBytes(8).toString('hex')}`);
      const file = await open(temp, 'wx', 0o600);
      let written = 0;
      try {
        if (Buffer.isBuffer(body)) {
          await file.writeFile(body);
          written = body.length;
        } else {
          await pipeline(body, async (source: AsyncIterable<Buffer | string>) => {
            for await (const data of source) {
              const chunk = Buffer.isBuffer(data) ? data : Buffer.from(data);
              // A stream longer than announced stops here rather than filling the disk.
              if (written + chunk.length > size) throw new Error(`artifact ${key}: more than ${size} bytes`);
              for (let at = 0; at < chunk.length;) at += (await file.write(chunk, at)).bytesWritten;
              written += chunk.length;
            }
          });
        }
        if (written !== size) throw new Error(`artifact ${key}: expected ${size} bytes, got ${written}`);
        await file.sync();
        await file.close();
        await mkdir(dirname(target), { recursive: true, mode: 0o700 });
        await rename(temp, target);
      } catch (err) {
        await file.close().catch(() => {});
        await rm(temp, { force: true });
        throw err;
      }
    },

    async signedUrl(key, expiresAt) {
      const expires = Math.floor(expiresAt.getTime() / 1000);
      const sig = signer.sign(key, expires);
      return `${DOWNLOAD_ROUTE_PREFIX}${encodeKeyPath(key)}?expires=${expires}&sig=${sig}`;
    },

    verify(key, expires, signature, now = new Date()) {
      if (!signer.verify(key, expires, signature)) return 'invalid';
      return expires * 1000 <= now.getTime() ? 'expired' : 'ok';
    },

    async openObject(key) {
      const segments = keySegments(key);
      const path = join(objects, ...segments);
      // O_NOFOLLOW guards the last component; the parent must resolve to exactly where the key says,
      // so a link anywhere on the way is refused too (nothing but put() writes here anyway).
      try {
        if ((await realpath(dirname(path))) !== join(objectsReal, ...segments.slice(0, -1))) return null;
      } catch {
        return null;
      }
      let handle;
      try {
        handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
      } catch {
        return null;
      }
      const stat = await handle.stat();
      if (!stat.isFile()) {
        await handle.close();
        return null;
      }
      return { stream: handle.createReadStream(), size: stat.size };
    },

    async deletePrefix(prefix) {
      await rm(join(objects, ...keySegments(normalisePrefix(prefix).slice(0, -1))), {
        recursive: true,
        force: true,
      });
    },

    async close() {},
  };
}
