import { createHash } from 'node:crypto';
import { existsSync, readlinkSync } from 'node:fs';
import type Docker from 'dockerode';
import { tarArchive, type TarEntry } from '../tar.js';

/**
 * The docker backend's image: a skeleton root filesystem (no registry is reachable, and nothing of
 * a distribution is wanted inside): empty mount points, the few /etc files runtimes read, and the
 * wrapper below. The runtimes come from the host's /usr, bound read-only at run time, as with bwrap.
 * Tagged with a hash of its content, so building is idempotent and a changed wrapper is a new image.
 */

/** Where the wrapper lives in the image. */
export const WRAPPER = '/.warden/run';

/**
 * The container's main process (under Docker's init). Its stdin carries, in order: a line with the
 * size of a tar archive of the run's files and the archive (extracted into the working dir before
 * the program starts), then — whenever the run begins — a line with the payload's size and the
 * payload, which reaches the program on fd 3 exactly as bwrap's fd 3 does, then the run's stdin,
 * which the program reads on its own fd 0. `head -c` reads no byte past the count it is given, so
 * the payload never eats into stdin. The program is started before its payload arrives: that is
 * what a pooled container waits in. The first line also carries a per-container tag (read off stdin
 * before the program starts, in no argv or environment): a setup failure exits 125 with a line on
 * stderr tagged with it, and when the program ends its status follows its output on stdout and on
 * stderr, tagged too. That trailer is how the run's end is known at once (Docker's own exit report
 * takes tens of milliseconds); each stream is complete up to its trailer, being one ordered pipe. A
 * program that found the tag could only end its run early with a status of its choosing, which it
 * can do anyway by exiting. Arguments: the working dir, the program's argv.
 */
const WRAPPER_SCRIPT = `#!/bin/sh
dir=$1
shift
# The shell's own messages (a job killed by a signal) go nowhere; the program's stderr is fd 6.
exec 5<&0 </dev/null 6>&2 2>/dev/null
read -r tag n <&5 || exit 125
fail() { echo "$tag $1" >&6; exit 125; }
case $n in ''|*[!0-9]*) fail "bad header" ;; esac
if [ "$n" -gt 0 ]; then
  head -c "$n" <&5 | tar -x -m -f - -C "$dir" 2>&6 || fail "files not written"
fi
cd "$dir" || fail "no working dir"
{ read -r n <&5 && head -c "$n" <&5; } | "$@" 3<&0 0<&5 5<&- 2>&6 6>&-
s=$?
printf '%s %s\n' "$tag" "$s"
printf '%s %s\n' "$tag" "$s" >&6
`;

/**
 * /sbin stays a directory of the image's own: Docker's init is mounted at /sbin/docker-init, which
 * cannot be made inside the read-only /usr a link would lead to (nothing a runtime needs is in it).
 */
const ROOT_LINK_DIRS = ['bin', 'lib', 'lib64', 'lib32', 'libx32'];

/** Top-level dirs that are links into /usr here (merged /usr) and those that must be bound instead. */
export function rootLayout(): { links: { path: string; target: string }[]; binds: string[] } {
  const links: { path: string; target: string }[] = [];
  const binds: string[] = [];
  for (const dir of ROOT_LINK_DIRS) {
    const path = `/${dir}`;
    if (!existsSync(path)) continue;
    try {
      links.push({ path: dir, target: readlinkSync(path) });
    } catch {
      binds.push(path);
    }
  }
  return { links, binds };
}

function imageEntries(): TarEntry[] {
  const { links, binds } = rootLayout();
  const dirs = [
    'usr',
    'etc',
    'tmp',
    'box',
    'out',
    'proc',
    'dev',
    'sys',
    '.warden',
    ...binds.map((b) => b.slice(1)),
  ];
  const file = (path: string, text: string, mode = 0o644): TarEntry => ({
    type: 'file',
    path,
    content: Buffer.from(text),
    mode,
  });
  return [
    ...dirs.map((path): TarEntry => ({ type: 'dir', path, mode: path === 'tmp' ? 0o1777 : 0o755 })),
    ...links.map((l): TarEntry => ({ type: 'symlink', path: l.path, target: l.target })),
    file('etc/passwd', 'sandbox:x:65534:65534:sandbox:/tmp:/usr/sbin/nologin\n'),
    file('etc/group', 'sandbox:x:65534:\n'),
    file('.warden/run', WRAPPER_SCRIPT, 0o755),
  ];
}

/** The image's archive and its content tag: `<name>:<hash>`. */
export function imageArchive(name: string): { tag: string; archive: Buffer } {
  const archive = tarArchive(imageEntries());
  const hash = createHash('sha256').update(archive).digest('hex').slice(0, 12);
  return { tag: `${name}:${hash}`, archive };
}

export async function imageExists(docker: Docker, tag: string): Promise<boolean> {
  try {
    await docker.getImage(tag).inspect();
    return true;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return false;
    throw err;
  }
}

/**
 * Imports the image unless it is there already; returns its tag. `onProgress` gets a line per step
 * (what is imported, then Docker's own progress events).
 */
export async function ensureImage(
  docker: Docker,
  name: string,
  onProgress?: (line: string) => void,
): Promise<string> {
  const { tag, archive } = imageArchive(name);
  if (await imageExists(docker, tag)) return tag;
  onProgress?.(`importing ${tag} (${Math.ceil(archive.length / 1024)} KiB)`);
  const [repo, version] = tag.split(':') as [string, string];
  const stream = await docker.importImage(archive as unknown as NodeJS.ReadableStream, {
    repo,
    tag: version,
  });
  await new Promise<void>((resolve, reject) =>
    docker.modem.followProgress(
      stream,
      (err: Error | null) => (err ? reject(err) : resolve()),
      (event: { status?: string; progress?: string }) => {
        if (event.status) onProgress?.([event.status, event.progress].filter(Boolean).join(' '));
      },
    ),
  );
  // Earlier builds (another wrapper) go, unless a container still uses one (Docker refuses: kept).
  const older = await docker.listImages({ filters: { reference: [name] } });
  for (const image of older) {
    if (image.RepoTags?.includes(tag)) continue;
    await docker
      .getImage(image.Id)
      .remove()
      .catch(() => {});
  }
  return tag;
}

/** The command that builds the image by hand (doctor prints it when the image is missing). */
export const BUILD_IMAGE_COMMAND = 'warden doctor --build-image';
