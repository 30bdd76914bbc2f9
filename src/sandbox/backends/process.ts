import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, readdirSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { superviseRun, type Supervised } from '../supervise.js';
import { validateFiles } from '../files.js';
import { isAlive } from '../cgroups.js';
import { sampleTree } from '../proc-sample.js';
import type { Backend, Limits, SandboxSpec, StartedSandbox } from '../types.js';

const WARNING = 'process backend: no isolation at all (development only); the code ran as a host process';

/**
 * rlimits only: for development on machines without bubblewrap. Every result says
 * `isolation: "none"`; nothing here holds against hostile code.
 */
export function createProcessBackend(defaults: Limits): Backend {
  async function start(spec: SandboxSpec): Promise<StartedSandbox> {
    const limits: Limits = { ...defaults, ...spec.limits };
    const files = validateFiles(spec.files ?? []);
    const dir = mkdtempSync(join(tmpdir(), `warden-run-${process.pid}-`));
    for (const f of files) {
      const path = join(dir, f.path);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, f.content);
      if (f.executable) chmodSync(path, 0o755);
    }
    const child = spawn(
      '/usr/bin/prlimit',
      [
        '--core=0',
        `--fsize=${limits.maxFileSizeBytes}`,
        `--nofile=${limits.maxOpenFiles}`,
        `--cpu=${Math.ceil(limits.cpuTimeMs / 1000)}:${Math.ceil(limits.cpuTimeMs / 1000) + 1}`,
        '--',
        ...spec.argv,
      ],
      {
        cwd: dir,
        env: { PATH: '/usr/bin:/bin', HOME: dir, LANG: 'C.UTF-8', TMPDIR: dir, ...spec.env },
        stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
        detached: true,
      },
    );
    child.on('error', () => {});
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    let peak = 0;
    let cpu = 0;
    let torn = false;
    const killGroup = () => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    };
    let memoryKilled = false;
    const sample = () => {
      if (!child.pid) return;
      const s = sampleTree(child.pid);
      cpu = Math.max(cpu, s.cpuMs);
      peak = Math.max(peak, s.rssBytes);
      if (s.rssBytes > limits.memoryBytes && !memoryKilled) {
        memoryKilled = true;
        killGroup();
      }
    };
    const supervised: Supervised = {
      child,
      backend: 'process',
      isolation: 'none',
      pooled: false,
      warnings: [WARNING],
      cpuMs: () => {
        sample();
        return cpu;
      },
      peakMemoryBytes: () => peak,
      oomKilled: () => memoryKilled,
      killTree: killGroup,
      decodeExit: (code, signal) => ({
        kind: 'exited',
        exitCode: signal ? null : code,
        signal,
      }),
      async teardown() {
        if (torn) return;
        torn = true;
        killGroup();
        rmSync(dir, { recursive: true, force: true });
      },
    };
    let used = false;
    return {
      backend: 'process',
      exited,
      async execute(input) {
        if (used) throw new Error('a sandbox runs once');
        used = true;
        return superviseRun(supervised, input, { ...limits, ...input.limits });
      },
      async destroy() {
        used = true;
        await supervised.teardown();
      },
    };
  }

  return {
    name: 'process',
    isolation: 'none',
    start,
    async probe() {
      return {
        backend: 'process',
        available: true,
        isolation: 'none',
        detail: 'rlimits only',
        warnings: [WARNING],
      };
    },
    async cleanupOrphans() {
      const removed: string[] = [];
      for (const name of readdirSync(tmpdir())) {
        const owner = Number(name.split('-')[2]);
        if (!name.startsWith('warden-run-') || isAlive(owner)) continue;
        rmSync(join(tmpdir(), name), { recursive: true, force: true });
        removed.push(join(tmpdir(), name));
      }
      return removed;
    },
  };
}
