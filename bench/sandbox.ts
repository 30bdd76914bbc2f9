import { fileURLToPath } from 'node:url';
import { sandboxConfigSchema } from '../src/config/schema.js';
import { createEngine } from '../src/sandbox/engine.js';
import { LANGUAGES, buildRun, languageSandbox, type LanguageId } from '../src/languages/index.js';
import { runBare } from './bare.js';
import { median, round, summary, throughput, timed } from './stats.js';

/**
 * Sandboxed runs against the same program started bare, measured in one run, paired and
 * interleaved so that the machine's noise hits both sides alike. Bare runs use a clean environment
 * and absolute paths, as the sandbox does.
 */

const PRINT: Record<'python' | 'javascript', { code: string; bare: string[] }> = {
  python: { code: 'print(1)', bare: ['/usr/bin/python3', '-c', 'print(1)'] },
  javascript: { code: 'console.log(1)', bare: ['/usr/bin/node', '-e', 'console.log(1)'] },
};

export async function benchSandbox(rounds = 30): Promise<Record<string, unknown>> {
  const cold = createEngine(sandboxConfigSchema.parse({ pool: { size: 0 } }));
  const pooled = createEngine(sandboxConfigSchema.parse({ pool: { size: 2 } }));
  const out: Record<string, unknown> = {};
  // Each measurement starts with the previous one's teardown done and the pool full: a refill or a
  // cgroup removal still running would be charged to the next one, whichever it is.
  const quiet = async () => {
    await Promise.all([cold.settle(), pooled.settle()]);
    await pooled.poolReady();
  };
  try {
    for (const language of ['python', 'javascript'] as const) {
      const lang = LANGUAGES[language as LanguageId];
      pooled.prewarm(languageSandbox(lang), 2);
      await pooled.poolReady();
      const spec = await buildRun(lang, PRINT[language].code);
      const bareMs: number[] = [];
      const coldMs: number[] = [];
      const pooledMs: number[] = [];
      for (let i = 0; i < 3; i++) await Promise.all([runBare(PRINT[language].bare), cold.run(spec)]); // warm caches
      for (let i = 0; i < rounds; i++) {
        await quiet();
        bareMs.push((await timed(() => runBare(PRINT[language].bare)))[0]);
        const [c, rc] = await timed(() => cold.run(spec));
        if (rc.status !== 'success') throw new Error(`cold run: ${rc.status} ${rc.error ?? rc.stderr}`);
        coldMs.push(c);
        await quiet();
        const [p, rp] = await timed(() => pooled.run(spec));
        if (!rp.pooled) throw new Error('pooled run did not come from the pool');
        pooledMs.push(p);
      }
      const b = summary(bareMs);
      const c = summary(coldMs);
      const p = summary(pooledMs);
      out[`start_${language}`] = {
        bare_cold_ms: b,
        sandbox_cold_ms: c,
        sandbox_pooled_ms: p,
        ratio_cold_vs_bare: round(c.median / b.median),
        ratio_pooled_vs_bare_cold: round(p.median / b.median),
      };
    }

    // CPU-bound loop of about 2 s: what the sandbox costs a program that computes.
    const loop = 'n = 0\nfor i in range(40_000_000):\n    n += i\nprint(n)';
    const loopSpec = await buildRun(LANGUAGES.python, loop, {
      limits: { cpuTimeMs: 30_000, wallTimeMs: 60_000 },
    });
    const bareLoop: number[] = [];
    const boxLoop: number[] = [];
    for (let i = 0; i < 5; i++) {
      bareLoop.push((await timed(() => runBare(['/usr/bin/python3', '-c', loop])))[0]);
      boxLoop.push((await timed(() => cold.run(loopSpec)))[0]);
    }
    out.cpu_loop = {
      bare_ms: summary(bareLoop),
      sandbox_ms: summary(boxLoop),
      overhead_percent: round((summary(boxLoop).median / summary(bareLoop).median - 1) * 100),
    };

    // Trivial runs per second at concurrency 2 and 8: three interleaved rounds of each, medians, every
    // block starting quiet().
    const spec = await buildRun(LANGUAGES.python, 'print(1)');
    pooled.prewarm(languageSandbox(LANGUAGES.python), 8);
    const total = 80;
    for (const concurrency of [2, 8]) {
      const rates = { bare: [] as number[], cold: [] as number[], pool: [] as number[] };
      for (let round = 0; round < 3; round++) {
        await quiet();
        rates.bare.push(await throughput(total, concurrency, () => runBare(PRINT.python.bare)));
        await quiet();
        rates.cold.push(await throughput(total, concurrency, () => cold.run(spec)));
        await quiet();
        rates.pool.push(await throughput(total, concurrency, () => pooled.run(spec)));
      }
      const [bareRate, coldRate, pooledRate] = [rates.bare, rates.cold, rates.pool].map(median);
      out[`throughput_c${concurrency}`] = {
        runs: total,
        rounds: 3,
        bare_per_s: bareRate,
        sandbox_cold_per_s: coldRate,
        sandbox_pool_per_s: pooledRate,
        ratio_cold_vs_bare: round(coldRate! / bareRate!),
        ratio_pool_vs_bare: round(pooledRate! / bareRate!),
      };
    }
  } finally {
    await Promise.all([cold.shutdown(), pooled.shutdown()]);
  }
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  console.log(JSON.stringify(await benchSandbox(), null, 2));
}
