import { readFileSync, readdirSync } from 'node:fs';

const CLK_TCK = 100;
const PAGE = 4096;

/**
 * Sums CPU and resident memory over a process tree from /proc: the accounting there is when no
 * cgroup is (process backend, bwrap without root). Processes that already exited are missed.
 */
export function sampleTree(root: number): { cpuMs: number; rssBytes: number } {
  let cpuMs = 0;
  let rssBytes = 0;
  const stack = [root];
  while (stack.length > 0) {
    const pid = stack.pop()!;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // utime, stime, cutime, cstime are fields 14-17 (index 11-14 after the comm field).
      const ticks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i] ?? 0), 0);
      cpuMs += (ticks * 1000) / CLK_TCK;
      rssBytes += Number(fields[21] ?? 0) * PAGE;
      for (const task of readdirSync(`/proc/${pid}/task`)) {
        const children = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
        if (children) stack.push(...children.split(' ').map(Number));
      }
    } catch {
      /* exited between reads */
    }
  }
  return { cpuMs, rssBytes };
}
