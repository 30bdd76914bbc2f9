import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { z } from 'zod';
import { sandboxConfigSchema } from '../src/config/schema.js';
import { createEngine } from '../src/sandbox/engine.js';
import { LANGUAGES, buildRun, languageSandbox } from '../src/languages/index.js';
import type { BackendName } from '../src/sandbox/types.js';
import { runBare } from './bare.js';
import { median, round, summary, timed } from './stats.js';

/**
 * An isolation backend against bare starts of the same program, paired and interleaved in one run:
 * cold (a sandbox started per run) and pooled (a started sandbox waiting for its payload: just
 * refilled, and settled for SETTLE_MS), then a
 * CPU-bound loop of about 2 s for the overhead a computing program pays: wall time, and CPU time (the
 * bare program's own against all the sandbox's cgroup was charged: runtime, init, gVisor's kernel —
 * work done, whatever the machine's other load), in `loopRounds` pairs whose order alternates; each
 * overhead is the median of the pairs' ratios. Keys name the backend.
 */
const PRINT: Record<'python' | 'javascript', { code: string; bare: string[] }> = {
  python: { code: 'print(1)', bare: ['/usr/bin/python3', '-c', 'print(1)'] },
  javascript: { code: 'console.log(1)', bare: ['/usr/bin/node', '-e', 'console.log(1)'] },
};

const LOOP = 'import time\nn = 0\nfor i in range(40_000_000):\n    n += i\nprint(n, time.process_time())';
/** The CPU time (ms) the loop printed after its result. */
const cpuOf = (stdout: string) => Number(stdout.trim().split(' ')[1]) * 1000;
const percent = (ratio: number) => round((ratio - 1) * 100);
/**
 * How long a "settled" pooled run's sandbox has waited: gVisor's kernel serves clock_gettime from its
 * vDSO only once its clocks are calibrated, ≈ 1 s after boot (before, each call is a trap: ≈ 900 for
 * a Node print(1)).
 */
const SETTLE_MS = 2000;

/** The loop started bare (as runBare does): its wall time and the CPU time it reports. */
async function bareLoop(): Promise<[number, number]> {
  const t = performance.now();
  const { stdout } = await promisify(execFile)('/usr/bin/python3', ['-c', LOOP], {
    env: { PATH: '/usr/bin:/bin' },
  });
  return [performance.now() - t, cpuOf(stdout)];
}

export async function benchBackend(
  config: z.input<typeof sandboxConfigSchema> & { backend: BackendName },
  out: Record<string, unknown> = {},
  rounds = 20,
  loopRounds = 11,
): Promise<Record<string, unknown>> {
  const name = config.backend;
  const cold = createEngine(sandboxConfigSchema.parse({ ...config, pool: { size: 0 } }));
  const pooled = createEngine(sandboxConfigSchema.parse({ ...config, pool: { size: 2 } }));
  try {
    for (const language of ['python', 'javascript'] as const) {
      const lang = LANGUAGES[language];
      pooled.prewarm(languageSandbox(lang), 2);
      await pooled.poolReady(60_000);
      const spec = await buildRun(lang, PRINT[language].code);
      const bareMs: number[] = [];
      const coldMs: number[] = [];
      const pooledMs: number[] = [];
      const settledMs: number[] = [];
      for (let i = 0; i < 2; i++) await Promise.all([runBare(PRINT[language].bare), cold.run(spec)]); // warm caches
      for (let i = 0; i < rounds; i++) {
        bareMs.push((await timed(() => runBare(PRINT[language].bare)))[0]);
        const [c, rc] = await timed(() => cold.run(spec));
        if (rc.status !== 'success') throw new Error(`cold run: ${rc.status} ${rc.error ?? rc.stderr}`);
        coldMs.push(c);
        await pooled.poolReady(60_000);
        const [p, rp] = await timed(() => pooled.run(spec));
        if (!rp.pooled || rp.status !== 'success')
          throw new Error(`pooled run: ${rp.status} pooled=${rp.pooled}`);
        pooledMs.push(p);
        if (i % 2) continue;
        // Every other round also a run on a sandbox that has waited SETTLE_MS, as a pool's sandboxes
        // mostly have in a service (a refill above is younger: it started during this round).
        await pooled.poolReady(60_000);
        await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
        const [ps, rs] = await timed(() => pooled.run(spec));
        if (!rs.pooled || rs.status !== 'success') throw new Error(`settled pooled run: ${rs.status}`);
        settledMs.push(ps);
      }
      const b = summary(bareMs);
      const c = summary(coldMs);
      const p = summary(pooledMs);
      const ps = summary(settledMs);
      out[`start_${language}`] = {
        bare_cold_ms: b,
        [`${name}_cold_ms`]: c,
        [`${name}_pooled_ms`]: p,
        [`${name}_pooled_settled_ms`]: ps,
        ratio_cold_vs_bare: round(c.median / b.median),
        ratio_pooled_vs_bare_cold: round(p.median / b.median),
        ratio_pooled_settled_vs_bare_cold: round(ps.median / b.median),
      };
    }
    const loopSpec = await buildRun(LANGUAGES.python, LOOP, {
      limits: { cpuTimeMs: 30_000, wallTimeMs: 60_000 },
    });
    const wall: [number[], number[]] = [[], []];
    const cpu: [number[], number[]] = [[], []];
    const boxLoop = async (): Promise<[number, number]> => {
      await pooled.poolReady(60_000);
      const [ms, r] = await timed(() => pooled.run(loopSpec));
      if (r.status !== 'success') throw new Error(`loop: ${r.status}`);
      return [ms, r.usage.cpuMs];
    };
    for (let i = 0; i < loopRounds; i++) {
      // Alternating which goes first: neither side always follows the other's load on the machine.
      let bare: [number, number];
      let box: [number, number];
      if (i % 2) {
        bare = await bareLoop();
        box = await boxLoop();
      } else {
        box = await boxLoop();
        bare = await bareLoop();
      }
      [bare, box].forEach(([ms, cpuMs], k) => {
        wall[k]!.push(ms);
        cpu[k]!.push(cpuMs);
      });
    }
    const paired = (side: [number[], number[]]) => percent(median(side[1].map((v, i) => v / side[0][i]!)));
    out.cpu_loop = {
      rounds: loopRounds,
      bare_ms: summary(wall[0]),
      [`${name}_ms`]: summary(wall[1]),
      overhead_percent: paired(wall),
      bare_cpu_ms: summary(cpu[0]),
      [`${name}_cpu_ms`]: summary(cpu[1]),
      cpu_time_overhead_percent: paired(cpu),
    };
  } finally {
    await cold.shutdown();
    await pooled.shutdown();
  }
  return out;
}
