import { constants, openSync, readSync } from 'node:fs';
import { syscallName } from './seccomp.js';

const AUDIT_ARCH: Record<string, 'x86_64' | 'aarch64'> = { c000003e: 'x86_64', c00000b7: 'aarch64' };

/**
 * Seccomp kills by host uid, read from the kernel log. Every seccomp kill of any process (a forked
 * child as much as the run's first process) is logged as an audit record (type 1326) carrying the
 * offender's host uid; each live sandbox has a uid of its own (UidLeases), so a record for that uid
 * read while the sandbox holds it is that sandbox's (the log is read up to date when the watch
 * begins). One non-blocking /dev/kmsg descriptor per Warden process is
 * read forward at the end of each run (usually one read that finds nothing), keeping only records of
 * uids being watched.
 *
 * Limits, and why the first process's SIGSYS is still checked on its own: this needs root (per-run
 * uids, and /dev/kmsg is unreadable to others under dmesg_restrict); the kernel must have audit
 * enabled and `kill_process` in /proc/sys/kernel/seccomp/actions_logged (both defaults); without an
 * audit daemon the kernel prints records through printk's rate limit (10 per 5 s by default,
 * host-wide), so under a flood of violations a forked child's kill can go unlogged; and the record is
 * printed by a kernel thread, which has always been well ahead of the few milliseconds a run takes
 * to be collected, but is not ordered with it.
 */
class SeccompKillLog {
  private fd: number | null | undefined;
  private readonly kills = new Map<number, string[]>();
  private readonly buf = Buffer.alloc(8192);

  watch(uid: number): void {
    this.open();
    this.drain();
    this.kills.set(uid, []);
  }

  unwatch(uid: number): void {
    this.kills.delete(uid);
  }

  /** Syscalls the processes of `uid` were killed for since its watch began. */
  of(uid: number): string[] {
    this.drain();
    return [...(this.kills.get(uid) ?? [])];
  }

  private open(): void {
    if (this.fd !== undefined) return;
    try {
      this.fd = openSync('/dev/kmsg', constants.O_RDONLY | constants.O_NONBLOCK);
    } catch {
      this.fd = null;
    }
  }

  private drain(): void {
    if (this.fd === null || this.fd === undefined) return;
    for (;;) {
      let n: number;
      try {
        n = readSync(this.fd, this.buf, 0, this.buf.length, null);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EPIPE') continue; // overwritten while away: skip ahead
        return; // EAGAIN: nothing newer
      }
      if (this.kills.size > 0) this.record(this.buf.toString('utf8', 0, n));
    }
  }

  private record(line: string): void {
    if (!line.includes('type=1326')) return;
    const list = this.kills.get(Number(/ uid=(\d+) /.exec(line)?.[1]));
    const nr = /\bsyscall=(\d+)/.exec(line)?.[1];
    if (!list || nr === undefined) return;
    const arch = /\barch=([0-9a-f]+)/.exec(line)?.[1];
    list.push(syscallName(Number(nr), AUDIT_ARCH[arch ?? ''] ?? undefined) ?? `syscall ${nr}`);
  }
}

export const seccompKills = new SeccompKillLog();
