import { existsSync, readFileSync, readdirSync, writeFileSync, mkdirSync, accessSync } from 'node:fs';
import { constants } from 'node:fs';
import { rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { isAlive } from './pids.js';
import type { Limits } from './types.js';

/**
 * Per-run cgroups for memory, processes and CPU, on cgroup v1 (separate hierarchies) or v2 (unified).
 * The kernel enforces these limits for the whole process tree of a run, which rlimits cannot do.
 */

type Controller = 'memory' | 'pids' | 'cpu' | 'cpuacct';

export type CgroupSupport =
  | { version: 1; mounts: Record<Controller, string>; parent: string }
  | { version: 2; root: string; parent: string };

export interface CgroupUnavailable {
  version: null;
  reason: string;
}

interface MountEntry {
  mountPoint: string;
  fsType: string;
  superOptions: string[];
}

function readMounts(): MountEntry[] {
  // mountinfo: "... mountPoint opts - fstype source superOpts"
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [left, right = ''] = line.split(' - ');
      const fields = (left ?? '').split(' ');
      const [fsType = '', , superOpts = ''] = right.split(' ');
      return { mountPoint: fields[4] ?? '', fsType, superOptions: superOpts.split(',') };
    });
}

function writable(path: string): boolean {
  try {
    accessSync(path, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** Finds usable cgroup controllers: v1 when its memory hierarchy is mounted, else v2 with memory+pids. */
export function detectCgroups(parent: string): CgroupSupport | CgroupUnavailable {
  let mounts: MountEntry[];
  try {
    mounts = readMounts();
  } catch (err) {
    return { version: null, reason: `cannot read mountinfo: ${(err as Error).message}` };
  }
  const v1: Partial<Record<Controller, string>> = {};
  for (const m of mounts.filter((e) => e.fsType === 'cgroup')) {
    for (const c of ['memory', 'pids', 'cpu', 'cpuacct'] as const) {
      if (m.superOptions.includes(c)) v1[c] = m.mountPoint;
    }
  }
  if (v1.memory && v1.pids && v1.cpu && v1.cpuacct) {
    const missing = Object.values(v1).filter((p) => !writable(p));
    if (missing.length === 0) return { version: 1, mounts: v1 as Record<Controller, string>, parent };
    return { version: null, reason: `cgroup v1 hierarchies not writable (${missing.join(', ')})` };
  }
  for (const m of mounts.filter((e) => e.fsType === 'cgroup2')) {
    const controllersFile = join(m.mountPoint, 'cgroup.controllers');
    if (!existsSync(controllersFile)) continue;
    const controllers = readFileSync(controllersFile, 'utf8').trim().split(/\s+/);
    if (!['memory', 'pids', 'cpu'].every((c) => controllers.includes(c))) continue;
    if (!writable(join(m.mountPoint, 'cgroup.subtree_control'))) {
      return { version: null, reason: `cgroup v2 at ${m.mountPoint} is not writable (no delegation)` };
    }
    return { version: 2, root: m.mountPoint, parent };
  }
  return { version: null, reason: 'no cgroup hierarchy with memory, pids and cpu controllers' };
}

function readNumber(path: string): number {
  try {
    return Number(readFileSync(path, 'utf8').trim()) || 0;
  } catch {
    return 0;
  }
}

/** Value of `key N` lines (memory.events, memory.oom_control, cpu.stat). */
function readKeyed(path: string, key: string): number {
  try {
    for (const line of readFileSync(path, 'utf8').split('\n')) {
      const [k, v] = line.split(' ');
      if (k === key) return Number(v) || 0;
    }
  } catch {
    /* a cgroup being torn down has no files left */
  }
  return 0;
}

function tryWrite(path: string, value: string): void {
  try {
    writeFileSync(path, value);
  } catch {
    /* optional knobs (memsw without swap accounting, swappiness) */
  }
}

function readPids(dir: string): number[] {
  try {
    return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface RunCgroup {
  /** Files a process writes its pid into to join every controller. */
  readonly procsFiles: string[];
  /** Makes the directories (destroy() removes whatever of them exists, also after a failed create). */
  create(): void;
  setLimits(limits: Pick<Limits, 'memoryBytes' | 'maxProcesses' | 'cpus'>): void;
  cpuMs(): number;
  peakMemoryBytes(): number;
  /** The kernel's OOM killer ended a process of this run. */
  oomKilled(): boolean;
  /** Kill every process in the cgroup and remove it; resolves once the directories are gone. */
  destroy(): Promise<void>;
}

function ensureDir(path: string): void {
  mkdirSync(path, { recursive: true });
}

async function killAndRemove(dirs: string[], killDir: string, v2: boolean): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    if (v2) tryWrite(join(killDir, 'cgroup.kill'), '1');
    for (const pid of readPids(killDir)) killQuietly(pid);
    let remaining = 0;
    // Asynchronous: removing a memory cgroup that held pages takes the kernel milliseconds, which
    // must not stall the event loop (other runs' output, HTTP answers).
    for (const dir of dirs) {
      if (!existsSync(dir)) continue;
      try {
        await rmdir(dir);
      } catch {
        remaining++;
      }
    }
    if (remaining === 0) return;
    await sleep(attempt < 20 ? 5 : 25);
  }
  throw new Error(`cgroup still busy after kill: ${dirs.join(', ')}`);
}

export function createRunCgroup(support: CgroupSupport, name: string): RunCgroup {
  if (support.version === 1) {
    const dir = (c: Controller) => join(support.mounts[c], support.parent, name);
    const controllers: Controller[] = ['memory', 'pids', 'cpu', 'cpuacct'];
    const dirs = [...new Set(controllers.map(dir))];
    // v1 refuses (EBUSY) a memory limit under what the processes already use; v2 would OOM-kill.
    let forcedOom = false;
    return {
      procsFiles: dirs.map((d) => join(d, 'cgroup.procs')),
      create: () => dirs.forEach(ensureDir),
      setLimits(limits) {
        const mem = String(limits.memoryBytes);
        const limit = join(dir('memory'), 'memory.limit_in_bytes');
        const memsw = join(dir('memory'), 'memory.memsw.limit_in_bytes');
        // The kernel keeps limit <= memsw at every step: raise memsw first, lower it last.
        try {
          writeFileSync(limit, mem);
          tryWrite(memsw, mem);
        } catch {
          tryWrite(memsw, mem);
          try {
            writeFileSync(limit, mem);
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== 'EBUSY') throw err;
            // A pre-started runtime already uses more than the run may: the run is over its limit.
            forcedOom = true;
            for (const pid of readPids(dir('memory'))) killQuietly(pid);
          }
        }
        tryWrite(join(dir('memory'), 'memory.swappiness'), '0');
        writeFileSync(join(dir('pids'), 'pids.max'), String(limits.maxProcesses));
        writeFileSync(join(dir('cpu'), 'cpu.cfs_period_us'), '100000');
        writeFileSync(join(dir('cpu'), 'cpu.cfs_quota_us'), String(Math.round(limits.cpus * 100_000)));
      },
      cpuMs: () => readNumber(join(dir('cpuacct'), 'cpuacct.usage')) / 1e6,
      peakMemoryBytes: () => readNumber(join(dir('memory'), 'memory.max_usage_in_bytes')),
      oomKilled: () => forcedOom || readKeyed(join(dir('memory'), 'memory.oom_control'), 'oom_kill') > 0,
      destroy: () => killAndRemove(dirs, dir('pids'), false),
    };
  }
  const parentDir = join(support.root, support.parent);
  const dir = join(parentDir, name);
  let peak = 0;
  const peakFile = join(dir, 'memory.peak');
  let hasPeak = false;
  return {
    procsFiles: [join(dir, 'cgroup.procs')],
    create() {
      ensureDir(parentDir);
      // Controllers must be enabled on every level above the run's cgroup.
      tryWrite(join(support.root, 'cgroup.subtree_control'), '+memory +pids +cpu');
      tryWrite(join(parentDir, 'cgroup.subtree_control'), '+memory +pids +cpu');
      ensureDir(dir);
      hasPeak = existsSync(peakFile);
    },
    setLimits(limits) {
      writeFileSync(join(dir, 'memory.max'), String(limits.memoryBytes));
      tryWrite(join(dir, 'memory.swap.max'), '0');
      writeFileSync(join(dir, 'pids.max'), String(limits.maxProcesses));
      writeFileSync(join(dir, 'cpu.max'), `${Math.round(limits.cpus * 100_000)} 100000`);
    },
    cpuMs: () => readKeyed(join(dir, 'cpu.stat'), 'usage_usec') / 1000,
    peakMemoryBytes: () => {
      // Kernels before 5.19 have no memory.peak: the supervisor's polling keeps a running maximum.
      peak = Math.max(peak, hasPeak ? readNumber(peakFile) : readNumber(join(dir, 'memory.current')));
      return peak;
    },
    oomKilled: () => readKeyed(join(dir, 'memory.events'), 'oom_kill') > 0,
    destroy: () => killAndRemove([dir], dir, true),
  };
}

/** The directories run cgroups are made in: one per v1 hierarchy, or one under the v2 root. */
export function cgroupParents(support: CgroupSupport): string[] {
  return support.version === 1
    ? [...new Set(Object.values(support.mounts))].map((m) => join(m, support.parent))
    : [join(support.root, support.parent)];
}

/**
 * Removes run cgroups whose owning Warden process is gone (a crashed predecessor), killing what is
 * still inside. Names are `<ownerPid>-<runId>`, so live Warden processes on the same host are spared.
 */
export async function removeOrphanCgroups(support: CgroupSupport): Promise<string[]> {
  const removed: string[] = [];
  for (const parent of cgroupParents(support)) {
    if (!existsSync(parent)) continue;
    for (const entry of readdirSync(parent, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      const owner = Number(entry.name.split('-')[0]);
      if (Number.isInteger(owner) && owner > 0 && isAlive(owner)) continue;
      const dir = join(parent, entry.name);
      await killAndRemove([dir], dir, support.version === 2);
      removed.push(dir);
    }
  }
  return removed;
}
