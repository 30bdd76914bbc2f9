import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { isAlive } from '../pids.js';

/**
 * Who owns a container: `<host>/<pid>/<start time>`, put on every container as a label. The start
 * time (clock ticks after boot, /proc/<pid>/stat field 22) tells a live owner from an unrelated
 * process that got its pid later. Containers of another host (a shared daemon) are never judged.
 */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

export const OWNER = `${hostname()}/${process.pid}/${startTime(process.pid) ?? '0'}`;

/** false only when the owner is of this host and is gone (or its pid now names another process). */
export function ownerAlive(owner: string): boolean {
  const [host, pid, started] = owner.split('/');
  if (host !== hostname()) return true;
  const n = Number(pid);
  if (!Number.isInteger(n) || n <= 0) return false;
  return isAlive(n) && startTime(n) === started;
}
