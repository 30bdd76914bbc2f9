import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The host side of a job's /out: a directory the sandbox binds writable at /out and the worker reads
 * after the run. As root it is a tmpfs of its own, mounted nosuid,nodev and capped at the job's disk
 * size, so a job can neither fill the host's disk through it nor plant device nodes in it; without
 * root it is a plain directory (the job then runs as Warden's own uid anyway).
 */

export interface OutputDir {
  readonly path: string;
  /** Unmounts and removes it, whatever the job left inside. Safe to call twice. */
  remove(): void;
}

const isRoot = () => process.getuid?.() === 0;

/** Where output dirs live: traversable by the sandboxes' uids (bwrap binds them as that uid). */
export function outputBase(dataDir: string): string {
  return isRoot() ? '/run/warden/job-outputs' : join(dataDir, 'job-outputs');
}

function mounted(path: string): boolean {
  return spawnSync('/usr/bin/mountpoint', ['-q', path]).status === 0;
}

function removeDir(path: string): void {
  if (isRoot() && mounted(path)) {
    // Lazy: a reader still holding a descriptor (an artifact upload that failed) must not keep it.
    spawnSync('/usr/bin/umount', ['-l', path]);
  }
  rmSync(path, { recursive: true, force: true });
}

export function createOutputDir(base: string, jobId: string, diskBytes: number): OutputDir {
  mkdirSync(base, { recursive: true, mode: 0o711 });
  chmodSync(base, 0o711);
  // The pid in the name lets a later worker tell a dead predecessor's dirs from live ones.
  const path = join(
    base,
    `${process.pid}-${jobId.replace(/[^A-Za-z0-9-]/g, '')}-${randomBytes(4).toString('hex')}`,
  );
  mkdirSync(path, { mode: 0o700 });
  if (isRoot()) {
    const res = spawnSync(
      '/usr/bin/mount',
      ['-t', 'tmpfs', '-o', `size=${diskBytes},mode=0700,nosuid,nodev`, 'warden-job-out', path],
      { encoding: 'utf8' },
    );
    if (res.status !== 0) {
      rmSync(path, { recursive: true, force: true });
      throw new Error(`cannot mount the output tmpfs: ${res.stderr.trim() || `exit ${res.status}`}`);
    }
  }
  let removed = false;
  return {
    path,
    remove() {
      if (removed) return;
      removed = true;
      removeDir(path);
    },
  };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes output dirs whose worker process is gone (a crash); returns their names. */
export function removeOrphanOutputDirs(base: string): string[] {
  let names: string[];
  try {
    names = readdirSync(base);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const pid = Number(name.split('-')[0]);
    if (!Number.isInteger(pid) || pid === process.pid || alive(pid)) continue;
    removeDir(join(base, name));
    removed.push(name);
  }
  return removed;
}
