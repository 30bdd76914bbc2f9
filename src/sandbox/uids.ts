import { mkdirSync, openSync, closeSync, writeSync, readFileSync, unlinkSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { isAlive } from './pids.js';

/**
 * Host uids for sandboxes. Each live sandbox gets a uid of its own, so two runs never share an
 * owner on the host (files, signals, rlimit counts), and none is ever uid 0 seen from outside.
 * Leases are lock files holding the owner's pid, so several Warden processes on one host (API and
 * workers) never hand out the same uid, and a crashed owner's leases are reclaimed.
 */
export class UidLeases {
  private next = 0;

  constructor(
    private readonly base: number,
    private readonly count: number,
    private readonly lockDir = '/run/warden/uids',
  ) {
    mkdirSync(lockDir, { recursive: true, mode: 0o700 });
  }

  acquire(): number {
    for (let i = 0; i < this.count; i++) {
      const slot = (this.next + i) % this.count;
      const uid = this.base + slot;
      if (this.tryLock(uid)) {
        this.next = slot + 1;
        return uid;
      }
    }
    throw new Error(`all ${this.count} sandbox uids are in use`);
  }

  release(uid: number): void {
    try {
      unlinkSync(this.path(uid));
    } catch {
      /* released twice */
    }
  }

  /** Drops leases whose owner process is gone; returns their uids. */
  reclaimStale(): number[] {
    const reclaimed: number[] = [];
    for (const name of readdirSync(this.lockDir)) {
      const owner = this.owner(join(this.lockDir, name));
      if (owner !== undefined && !isAlive(owner)) {
        unlinkSync(join(this.lockDir, name));
        reclaimed.push(Number(name));
      }
    }
    return reclaimed;
  }

  private path(uid: number): string {
    return join(this.lockDir, String(uid));
  }

  private owner(path: string): number | undefined {
    try {
      const pid = Number(readFileSync(path, 'utf8'));
      return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  private tryLock(uid: number): boolean {
    const path = this.path(uid);
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = this.owner(path);
      if (owner !== undefined && !isAlive(owner)) {
        unlinkSync(path);
        return this.tryLock(uid);
      }
      return false;
    }
  }
}
