import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { isAlive } from '../sandbox/pids.js';

/**
 * The host side of a job's /out: a directory the sandbox binds writable at /out and the worker reads
 * after the run. As root it is a tmpfs of its own, mounted nosuid,nodev and capped at the job's disk
 * size, so a job can neither fill the host's disk through it nor plant device nodes in it; without
 * root it is a plain directory (the job then runs as Warden's own uid anyway).
 */

export interface OutputDir {
  readonly path: string;
  /** Unmounts and removes it, whatever the job left inside. Safe to call twice. */
  remove(): Promise<void>;
}

const run = promisify(execFile);

const isRoot = () => process.getuid?.() === 0;

/** Where output dirs live: traversable by the sandboxes' uids (bwrap binds them as that uid). */
export function outputBase(dataDir: string): string {
  return isRoot() ? '/run/warden/job-outputs' : join(dataDir, 'job-outputs');
}

/** Searchable by the sandboxes' uids, listable by root only. */
export function prepareOutputBase(base: string): void {
  mkdirSync(base, { recursive: true, mode: 0o711 });
  chmodSync(base, 0o711);
}

function mountedUnder(base: string): Set<string> {
  const points = new Set<string>();
  for (const line of readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
    const point = line.split(' ')[1];
    if (point?.startsWith(`${base}/`)) points.add(point);
  }
  return points;
}

export async function createOutputDir(base: string, jobId: string, diskBytes: number): Promise<OutputDir> {
  prepareOutputBase(base);
  // The pid in the name lets a later worker tell a dead predecessor's dirs from live ones.
  const path = join(
    base,
    `${process.pid}-${jobId.replace(/[^A-Za-z0-9-]/g, '')}-${randomBytes(4).toString('hex')}`,
  );
  mkdirSync(path, { mode: 0o700 });
  const mounted = isRoot();
  if (mounted) {
    try {
      await run('/usr/bin/mount', [
        '-t',
        'tmpfs',
        '-o',
        `size=${diskBytes},mode=0700,nosuid,nodev`,
        'warden-job-out',
        path,
      ]);
    } catch (err) {
      rmSync(path, { recursive: true, force: true });
      const stderr = (err as { stderr?: string }).stderr?.trim();
      throw new Error(`cannot mount the output tmpfs: ${stderr || (err as Error).message}`);
    }
  }
  let removing: Promise<void> | undefined;
  return {
    path,
    remove() {
      removing ??= (async () => {
        // Lazy: a reader still holding a descriptor (an upload that failed) must not keep it mounted.
        if (mounted) await run('/usr/bin/umount', ['-l', path]);
        await rm(path, { recursive: true, force: true });
      })();
      return removing;
    },
  };
}

/** Removes output dirs whose worker process is gone (a crash); returns their names. */
export function removeOrphanOutputDirs(base: string): string[] {
  let names: string[];
  try {
    names = readdirSync(base);
  } catch {
    return [];
  }
  const mounts = mountedUnder(base);
  const removed: string[] = [];
  for (const name of names) {
    const pid = Number(name.split('-')[0]);
    if (!Number.isInteger(pid) || pid === process.pid || isAlive(pid)) continue;
    const path = join(base, name);
    if (mounts.has(path)) spawnSync('/usr/bin/umount', ['-l', path]);
    rmSync(path, { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}
