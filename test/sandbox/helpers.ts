import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cgroupParents, detectCgroups } from '../../src/sandbox/cgroups.js';
import type { z } from 'zod';
import { sandboxConfigSchema } from '../../src/config/schema.js';
import { createEngine, type Engine } from '../../src/sandbox/engine.js';
import { LANGUAGES, buildRun, type LanguageId } from '../../src/languages/index.js';
import { BACKEND_NAMES, type BackendName, type Limits, type RunResult } from '../../src/sandbox/types.js';
import { seccompKills } from '../../src/sandbox/audit.js';

export const MiB = 1024 * 1024;

/** No pre-started sandboxes on any backend unless a test asks: a refill starting beside a run is noise. */
const NO_POOLS = { size: 0 };

export function testEngine(overrides: Partial<z.input<typeof sandboxConfigSchema>> = {}): Engine {
  const pools = { bwrap: NO_POOLS, docker: NO_POOLS, gvisor: NO_POOLS, process: NO_POOLS };
  return createEngine(
    sandboxConfigSchema.parse({ pool: NO_POOLS, ...overrides, pools: { ...pools, ...overrides.pools } }),
  );
}

export async function runCode(
  engine: Engine,
  language: LanguageId,
  code: string,
  options: { stdin?: string; limits?: Partial<Limits>; backend?: BackendName } = {},
): Promise<RunResult> {
  const spec = await buildRun(LANGUAGES[language], code, options);
  return engine.run(spec, { backend: options.backend });
}

export interface HostProcess {
  pid: number;
  uids: number[];
  cmdline: string;
}

/** Every process on the host as the host sees it (real/effective/saved/fs uids). */
export function hostProcesses(): HostProcess[] {
  const out: HostProcess[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const status = readFileSync(`/proc/${name}/status`, 'utf8');
      const uidLine = status.split('\n').find((l) => l.startsWith('Uid:')) ?? '';
      const uids = uidLine.split(/\s+/).slice(1).map(Number);
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8').replace(/\0/g, ' ');
      out.push({ pid: Number(name), uids, cmdline });
    } catch {
      /* exited meanwhile */
    }
  }
  return out;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` until it returns true or `ms` pass (no fixed sleeps as synchronisation). */
export async function waitFor(probe: () => boolean, ms = 10_000, every = 20): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!probe()) {
    if (Date.now() > deadline) return false;
    await sleep(every);
  }
  return true;
}

/** Where this host keeps run cgroups (v1 hierarchies or the v2 root), empty without usable cgroups. */
export function cgroupParentDirs(parent = 'warden'): string[] {
  const support = detectCgroups(parent);
  return support.version === null ? [] : cgroupParents(support);
}

/** A sandbox spawner of this test process (`warden-launch --serve <this pid>`, its direct child). */
export function isSpawner(pid: number, ppid: number): boolean {
  if (ppid !== process.pid) return false;
  try {
    return (
      readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(1, 3).join(' ') ===
      `--serve ${process.pid}`
    );
  } catch {
    return false;
  }
}

/** Every process on the host: its parent and its command name. */
export function processParents(): Map<number, { ppid: number; comm: string }> {
  const parentOf = new Map<number, { ppid: number; comm: string }>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parentOf.set(Number(name), { ppid, comm });
    } catch {
      /* exited meanwhile */
    }
  }
  return parentOf;
}

/** Processes started (directly or not) by this test process, except esbuild's service. */
function descendants(): string[] {
  const parentOf = processParents();
  const out: string[] = [];
  for (const [pid, { comm }] of parentOf) {
    // esbuild's service, the audit reader and the sandbox spawners (its own children; their
    // children, the sandboxes, do count) live as long as this process or its engines, by design.
    if (comm === 'esbuild' || pid === seccompKills.readerPid() || isSpawner(pid, parentOf.get(pid)!.ppid))
      continue;
    for (let p = parentOf.get(pid)?.ppid; p !== undefined && p > 1; p = parentOf.get(p)?.ppid) {
      if (p === process.pid) {
        out.push(`${pid} ${comm}`);
        break;
      }
    }
  }
  return out;
}

export interface Leftovers {
  processes: string[];
  cgroups: string[];
  uidLeases: string[];
  tempDirs: string[];
}

/**
 * What sandboxes of this test process left on the host: processes, run cgroups (wherever this
 * host's cgroups are, v1 or v2), uid lease files and the process backend's temp dirs. Scoped to this
 * process (names and leases carry its pid) so that other tests running at once do not count.
 */
export function leftovers(uidDir = '/run/warden/uids'): Leftovers {
  const mine = (name: string) => name.startsWith(`${process.pid}-`);
  return {
    processes: descendants(),
    cgroups: cgroupParentDirs().flatMap((d) =>
      existsSync(d)
        ? readdirSync(d)
            .filter(mine)
            .map((n) => join(d, n))
        : [],
    ),
    uidLeases: existsSync(uidDir)
      ? readdirSync(uidDir).filter((f) => {
          try {
            return readFileSync(join(uidDir, f), 'utf8') === String(process.pid);
          } catch {
            return false;
          }
        })
      : [],
    tempDirs: readdirSync(tmpdir()).filter((n) => n.startsWith(`warden-run-${process.pid}-`)),
  };
}

export const NOTHING_LEFT: Leftovers = { processes: [], cgroups: [], uidLeases: [], tempDirs: [] };

/** Waits (bounded) until nothing is left, then returns what is: the caller asserts NOTHING_LEFT. */
export async function settledLeftovers(uidDir?: string): Promise<Leftovers> {
  const empty = (l: Leftovers) => Object.values(l).every((v: string[]) => v.length === 0);
  await waitFor(() => empty(leftovers(uidDir)), 10_000);
  return leftovers(uidDir);
}

/**
 * The isolation backends (all but `process`) as this machine offers them, probed for real: the
 * sandbox suites run once per available one. Under CI=true every one must be available (CI installs
 * runsc and Docker), so a missing one fails there instead of being skipped.
 */
export async function sandboxBackends(): Promise<{
  available: BackendName[];
  unavailable: { backend: BackendName; reason: string }[];
}> {
  const engine = testEngine();
  try {
    const probes = await engine.probe();
    const isolating = probes.filter((p) => BACKEND_NAMES.includes(p.backend) && p.backend !== 'process');
    return {
      available: isolating.filter((p) => p.available).map((p) => p.backend),
      unavailable: isolating
        .filter((p) => !p.available)
        .map((p) => ({ backend: p.backend, reason: p.detail })),
    };
  } finally {
    await engine.shutdown();
  }
}

/** Declares, for each unavailable backend, a skip with the reason printed, or under CI a failure. */
export function reportUnavailable(
  suite: string,
  unavailable: { backend: BackendName; reason: string }[],
  it: (name: string, fn: () => void) => void,
): void {
  for (const { backend, reason } of unavailable) {
    if (process.env.CI === 'true') {
      it(`${suite} on ${backend}: the backend is available in CI`, () => {
        throw new Error(`${backend} is not available: ${reason}`);
      });
    } else {
      process.stderr.write(`skipping ${suite} on ${backend}: ${reason}\n`);
    }
  }
}
