/**
 * Cost of the TypeScript type-check stage (`languages.typescript.typecheck`, README "Compile errors"):
 * a worker's first check (the compiler's load and the lib's parse included), then the warm median for
 * a small file and a 2,000-line one. Run it alone (`npm run bench -- typecheck`) for a cold figure
 * that no earlier suite has warmed.
 */
import { pathToFileURL } from 'node:url';
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

export async function benchTypecheck(): Promise<Record<string, unknown>> {
  const big = large(2_000);
  let started = performance.now();
  const { typeCheck } = await import('../src/languages/typecheck.js');
  if (typeCheck(SMALL).length > 0) throw new Error('the small file should type-check');
  const coldMs = performance.now() - started;
  started = performance.now();
  if (typeCheck(big).length > 0) throw new Error('the large file should type-check');
  const firstLargeMs = performance.now() - started;
  const warm = (code: string) =>
    median(
      Array.from({ length: RUNS }, () => {
        const t = performance.now();
        typeCheck(code);
        return performance.now() - t;
      }),
    );
  return {
    coldFirstCheckMs: round(coldMs),
    firstLargeCheckMs: round(firstLargeMs),
    warmSmallMedianMs: round(warm(SMALL)),
    warmLargeMedianMs: round(warm(big)),
    largeLines: big.split('\n').length,
    runs: RUNS,
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.stdout.write(`${JSON.stringify(await benchTypecheck(), null, 2)}\n`);
}
