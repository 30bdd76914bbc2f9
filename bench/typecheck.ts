/**
 * Cost of the TypeScript type-check stage (`languages.typescript.typecheck`, README "Compile errors"),
 * as Warden runs it (in its own process, typecheck-worker.ts) and as it used to run (on the caller's
 * event loop): each way's latency (the first check, the compiler's load and the lib's parse included;
 * then warm medians for a small file and a 2,000-line one) and the longest event-loop delay while it
 * checks the 2,000-line file (perf_hooks.monitorEventLoopDelay), the stall every other request on the
 * loop would see. The checker process is measured first, so its cold figure is a process's. Run it alone
 * (`npm run bench -- typecheck`) for cold figures no earlier suite has warmed.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { median, round } from './stats.js';

const RUNS = 21;

const SMALL = 'const n: number = 41;\nconsole.log(n + 1);\n';

function large(lines: number): string {
  const chunk = (i: number) =>
    `function total${i}(prices: number[], label: string): string {\n` +
    `  const sum = prices.map((p) => p * 1.2).reduce((a, b) => a + b, 0);\n` +
    `  return sum > 100 ? \`\${label}: \${sum.toFixed(2)}\` : label;\n` +
    `}\nconsole.log(total${i}([${i}, 2, 3], 'order ${i}'));\n\n`;
  let code = '';
  for (let i = 0; code.split('\n').length < lines; i++) code += chunk(i);
  return code;
}

type Check = (code: string) => Promise<unknown[]>;

async function elapsed(check: Check, code: string): Promise<number> {
  const t = performance.now();
  if ((await check(code)).length > 0) throw new Error('the benchmark files should type-check');
  return performance.now() - t;
}

const tick = (ms = 0) => new Promise((resolve) => setTimeout(resolve, ms));

/** The event loop's delays (ms) while `work` runs, the histogram warmed up before and sampled after. */
async function loopDelay(work: () => Promise<unknown>): Promise<Record<string, number>> {
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  await tick(5); // the histogram's first sample is only a baseline
  await work();
  await tick(5); // one more sample after the last stall
  delay.disable();
  return { max: round(delay.max / 1e6), p99: round(delay.percentile(99) / 1e6) };
}

/** `RUNS` checks of `code`, the loop turning between them as it would between requests. */
async function checks(check: Check, code: string): Promise<void> {
  for (let i = 0; i < RUNS; i++) {
    await elapsed(check, code);
    await tick();
  }
}

/**
 * The control: a thread that only spins for `ms`. On a machine with no idle core, the delays it
 * causes are the OS sharing CPUs, which any busy thread (or neighbour process) causes as much.
 */
async function spinning(ms: number): Promise<void> {
  const spin = new Worker(`const end = Date.now() + ${Math.round(ms)}; while (Date.now() < end);`, {
    eval: true,
  });
  await new Promise((resolve) => spin.once('exit', resolve));
}

async function measure(load: () => Promise<Check>, big: string): Promise<Record<string, unknown>> {
  let check: Check = async () => [];
  let coldFirstCheckMs = 0;
  const coldLoopDelayMs = await loopDelay(async () => {
    const started = performance.now();
    check = await load();
    await elapsed(check, SMALL);
    coldFirstCheckMs = performance.now() - started;
  });
  const firstLargeCheckMs = await elapsed(check, big);
  const warm = async (code: string) => {
    const times: number[] = [];
    for (let i = 0; i < RUNS; i++) times.push(await elapsed(check, code));
    return median(times);
  };
  return {
    coldFirstCheckMs: round(coldFirstCheckMs),
    coldLoopDelayMs,
    firstLargeCheckMs: round(firstLargeCheckMs),
    warmSmallMedianMs: round(await warm(SMALL)),
    warmLargeMedianMs: round(await warm(big)),
    largeChecksLoopDelayMs: await loopDelay(() => checks(check, big)),
  };
}

export async function benchTypecheck(): Promise<Record<string, unknown>> {
  const big = large(2_000);
  const apart = await measure(async () => {
    const { typeCheckApart } = await import('../src/languages/typecheck-worker.js');
    return typeCheckApart;
  }, big);
  const onLoop = await measure(async () => {
    const { typeCheck } = await import('../src/languages/typecheck.js');
    return async (code) => typeCheck(code);
  }, big);
  const { stopTypeChecker } = await import('../src/languages/typecheck-worker.js');
  await stopTypeChecker();
  const checksMs = RUNS * (apart.warmLargeMedianMs as number);
  return {
    inOwnProcess: apart,
    onLoop,
    idleLoopDelayMs: await loopDelay(() => tick(checksMs)),
    spinningThreadLoopDelayMs: await loopDelay(() => spinning(checksMs)),
    largeLines: big.split('\n').length,
    runs: RUNS,
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.stdout.write(`${JSON.stringify(await benchTypecheck(), null, 2)}\n`);
}
