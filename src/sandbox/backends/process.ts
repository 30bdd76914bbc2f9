import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, readdirSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { validateFiles } from '../files.js';
import { createHoldings, releaseAndRethrow } from '../holdings.js';
import { SUPERVISED_LIMITS } from '../limits.js';
import { isAlive } from '../pids.js';
import { sampleTree } from '../proc-sample.js';
import type { Backend, FaultHook, Limits, Sandbox, SandboxSpec } from '../types.js';

const WARNING = 'process backend: no isolation at all (development only); the code ran as a host process';

/**
 * rlimits only: for development on machines without bubblewrap. Every result says
 * `isolation: "none"`; nothing here holds against hostile code.
 */
export function createProcessBackend(fault: FaultHook = () => {}): Backend {
  async function start(spec: SandboxSpec, limits: Limits): Promise<Sandbox> {
    const files = validateFiles(spec.files ?? []);
    const held = createHoldings();
    try {
      const dir = held.take(mkdtempSync(join(tmpdir(), `warden-run-${process.pid}-`)), (d) =>
        rmSync(d, { recursive: true, force: true }),
      );
      fault('tempdir');
      for (const f of files) {
        const path = join(dir, f.path);
        mkdirSync(dirname(path), { recursive: true });
        writeFileSync(path, f.content);
        if (f.executable) chmodSync(path, 0o755);
      }
      const cpuSeconds = Math.ceil(limits.cpuTimeMs / 1000);
      const child = spawn(
        '/usr/bin/prlimit',
        [
          '--core=0',
          `--fsize=${limits.maxFileSizeBytes}`,
          `--nofile=${limits.maxOpenFiles}`,
          `--cpu=${cpuSeconds}:${cpuSeconds + 1}`,
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
      const exited = new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.once('error', () => resolve());
      });
      const killGroup = () => {
        try {
          if (child.pid) process.kill(-child.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      };
      held.take(child, async () => {
        killGroup();
        await exited;
      });
      fault('spawned');
      let peak = 0;
      let cpu = 0;
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
      return {
        backend: 'process',
        isolation: 'none',
        warnings: [WARNING],
        child,
        exited,
        // Only what the supervisor enforces can change (SUPERVISED_LIMITS), and it reads it from the run.
        setLimits: () => {},
        cpuMs: () => {
          sample();
          return cpu;
        },
        peakMemoryBytes: () => peak,
        oomKilled: () => memoryKilled,
        killTree: killGroup,
        decodeExit: (code, signal) => ({ kind: 'exited', exitCode: signal ? null : code, signal }),
        violations: async () => [],
        release: () => held.release(),
      };
    } catch (err) {
      return releaseAndRethrow(held, err);
    }
  }

  return {
    name: 'process',
    isolation: 'none',
    adjustableLimits: SUPERVISED_LIMITS,
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
