import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { benchSandbox } from './sandbox.js';
import { benchDocker } from './docker.js';
import { benchAnalysis } from './analysis.js';
import { benchTypecheck } from './typecheck.js';
import { benchApi } from './api.js';
import { benchTasks } from './tasks.js';
import { benchJobs } from './jobs.js';

/**
 * `npm run bench`: every benchmark in one process, one after the other, results in
 * bench/results/latest.json (and a timestamped copy). Ratios compare runs measured in this same run.
 */
const suites: Record<string, () => Promise<Record<string, unknown>>> = {
  sandbox: () => benchSandbox(),
  docker: () => benchDocker(),
  analysis: () => benchAnalysis(),
  typecheck: () => benchTypecheck(),
  api: () => benchApi(),
  tasks: () => benchTasks(),
  jobs: () => benchJobs(),
};

const only = process.argv.slice(2);
const results: Record<string, unknown> = {
  date: new Date().toISOString(),
  machine: { cpus: cpus().length, model: cpus()[0]?.model, loadavg: loadavg(), node: process.version },
};
for (const [name, run] of Object.entries(suites)) {
  if (only.length > 0 && !only.includes(name)) continue;
  process.stderr.write(`bench: ${name}…\n`);
  const started = performance.now();
  results[name] = await run();
  process.stderr.write(`bench: ${name} done in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
}
const dir = fileURLToPath(new URL('./results/', import.meta.url));
mkdirSync(dir, { recursive: true });
const json = `${JSON.stringify(results, null, 2)}\n`;
writeFileSync(`${dir}latest.json`, json);
writeFileSync(`${dir}${(results.date as string).replace(/[:.]/g, '-')}.json`, json);
process.stdout.write(json);
process.exit(0);
