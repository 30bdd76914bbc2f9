import { closeSync, constants, openSync, readSync } from 'node:fs';
import { syscallName } from './seccomp.js';

const AUDIT_ARCH: Record<string, 'x86_64' | 'aarch64'> = { c000003e: 'x86_64', c00000b7: 'aarch64' };

/**
 * Names the system call seccomp killed a run for. The kernel logs every seccomp kill (audit record
 * type 1326) with the offender's host uid; each live sandbox has a uid of its own, so the newest
 * record for that uid since the sandbox started is this run's. Needs root (reading /dev/kmsg); returns undefined otherwise.
 */
export async function readSeccompKill(uid: number, sinceUs: bigint): Promise<string | undefined> {
  let fd: number;
  try {
    fd = openSync('/dev/kmsg', constants.O_RDONLY | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  let found: string | undefined;
  const buf = Buffer.alloc(8192);
  try {
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, buf, 0, buf.length, null);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EPIPE') continue; // records overwritten while reading: skip ahead
        break; // EAGAIN: end of the ring buffer
      }
      const record = buf.toString('utf8', 0, n);
      // "prio,seq,timestamp_us,flags;text": skip what a previous holder of this uid left in the log.
      const stamp = record.split(',', 3)[2];
      if (stamp === undefined || BigInt(stamp) < sinceUs) continue;
      if (!record.includes('type=1326') || !record.includes(` uid=${uid} `)) continue;
      const nr = /\bsyscall=(\d+)/.exec(record)?.[1];
      const arch = /\barch=([0-9a-f]+)/.exec(record)?.[1];
      if (nr === undefined) continue;
      found = syscallName(Number(nr), AUDIT_ARCH[arch ?? ''] ?? undefined) ?? `syscall ${nr}`;
    }
  } finally {
    closeSync(fd);
  }
  return found;
}
