import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CgroupSupport } from '../cgroups.js';

/**
 * CPU and memory of a running container, read from the cgroup Docker made for it (found through its
 * first process, whatever the daemon's cgroup driver and parent). The daemon removes that cgroup as
 * the container ends, so the last values read are kept: usage is sampled, like the supervisor's
 * CPU-limit check, every 20 ms.
 */
export interface ContainerUsage {
  cpuMs(): number;
  peakMemoryBytes(): number;
  /** The kernel's OOM killer ended a process of the container (read while it still runs). */
  oomKilled(): boolean;
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function keyed(text: string | undefined, key: string): number | undefined {
  const line = text?.split('\n').find((l) => l.startsWith(`${key} `));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}

export function containerUsage(support: CgroupSupport, pid: number): ContainerUsage {
  const lines = (read(`/proc/${pid}/cgroup`) ?? '').split('\n').filter(Boolean);
  const pathOf = (controller: string) =>
    lines.map((l) => l.split(':')).find(([, ctrls]) => ctrls?.split(',').includes(controller))?.[2];
  let cpuFile: string | undefined;
  let cpuScale = 1e6;
  let memFile: string | undefined;
  let oomFile: string | undefined;
  if (support.version === 1) {
    const cpu = pathOf('cpuacct');
    const mem = pathOf('memory');
    if (cpu) cpuFile = join(support.mounts.cpuacct, cpu, 'cpuacct.usage');
    if (mem) memFile = join(support.mounts.memory, mem, 'memory.max_usage_in_bytes');
    if (mem) oomFile = join(support.mounts.memory, mem, 'memory.oom_control');
  } else {
    const path = lines.find((l) => l.startsWith('0::'))?.slice(3);
    if (path) {
      cpuFile = join(support.root, path, 'cpu.stat');
      cpuScale = 1e3;
      memFile = join(support.root, path, 'memory.peak');
      oomFile = join(support.root, path, 'memory.events');
    }
  }
  let cpu = 0;
  let peak = 0;
  return {
    cpuMs() {
      const text = cpuFile ? read(cpuFile) : undefined;
      const raw = support.version === 1 ? Number(text) : keyed(text, 'usage_usec');
      if (raw !== undefined && Number.isFinite(raw)) cpu = Math.max(cpu, raw / cpuScale);
      return cpu;
    },
    peakMemoryBytes() {
      const raw = Number(memFile ? read(memFile) : undefined);
      if (Number.isFinite(raw)) peak = Math.max(peak, raw);
      return peak;
    },
    oomKilled: () => (keyed(oomFile ? read(oomFile) : undefined, 'oom_kill') ?? 0) > 0,
  };
}
