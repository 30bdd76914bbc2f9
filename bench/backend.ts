import type { z } from 'zod';
import { sandboxConfigSchema } from '../src/config/schema.js';
import { createEngine } from '../src/sandbox/engine.js';
import { LANGUAGES, buildRun, languageSandbox } from '../src/languages/index.js';
import type { BackendName } from '../src/sandbox/types.js';
import { runBare } from './bare.js';
import { round, summary, timed } from './stats.js';

/**
 * An isolation backend against bare starts of the same program, paired and interleaved in one run:
 * cold (a sandbox started per run) and pooled (a started sandbox waiting for its payload), then a
 * CPU-bound loop of about 2 s for the overhead a computing program pays. Keys name the backend.
 */
const PRINT: Record<'python' | 'javascript', { code: string; bare: string[] }> = {
  python: { code: 'print(1)', bare: ['/usr/bin/python3', '-c', 'print(1)'] },
  javascript: { code: 'console.log(1)', bare: ['/usr/bin/node', '-e', 'console.log(1)'] },
};

export async function benchBackend(
  config: z.input<typeof sandboxConfigSchema> & { backend: BackendName },
  out: Record<string, unknown> = {},
  rounds = 20,
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
      }
      const b = summary(bareMs);
      const c = summary(coldMs);
      const p = summary(pooledMs);
      out[`start_${language}`] = {
        bare_cold_ms: b,
        [`${name}_cold_ms`]: c,
        [`${name}_pooled_ms`]: p,
        ratio_cold_vs_bare: round(c.median / b.median),
        ratio_pooled_vs_bare_cold: round(p.median / b.median),
      };
    }
    const loop = 'n = 0\nfor i in range(40_000_000):\n    n += i\nprint(n)';
    const loopSpec = await buildRun(LANGUAGES.python, loop, {
      limits: { cpuTimeMs: 30_000, wallTimeMs: 60_000 },
    });
    const bareLoop: number[] = [];
    const boxLoop: number[] = [];
    for (let i = 0; i < 5; i++) {
      bareLoop.push((await timed(() => runBare(['/usr/bin/python3', '-c', loop])))[0]);
      await pooled.poolReady(60_000);
      const [ms, r] = await timed(() => pooled.run(loopSpec));
      if (r.status !== 'success') throw new Error(`loop: ${r.status}`);
      boxLoop.push(ms);
    }
    out.cpu_loop = {
      bare_ms: summary(bareLoop),
      [`${name}_ms`]: summary(boxLoop),
      overhead_percent: round((summary(boxLoop).median / summary(bareLoop).median - 1) * 100),
    };
  } finally {
    await cold.shutdown();
    await pooled.shutdown();
  }
  return out;
}
