import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { benchSandbox } from './sandbox.js';
import { benchDocker } from './docker.js';
import { benchGvisor } from './gvisor.js';
import { benchAnalysis } from './analysis.js';
import { benchTypecheck } from './typecheck.js';
import { benchApi } from './api.js';
import { benchTasks } from './tasks.js';
import { benchJobs } from './jobs.js';
import { benchAudit } from './audit.js';

/**
 * `npm run bench`: every benchmark in one process, one after the other, results in
 * bench/results/latest.json (and a timestamped copy). Ratios compare runs measured in this same run.
 */
const suites: Record<string, () => Promise<Record<string, unknown>>> = {
  sandbox: () => benchSandbox(),
  docker: () => benchDocker(),
  gvisor: () => benchGvisor(),
  analysis: () => benchAnalysis(),
  typecheck: () => benchTypecheck(),
  api: () => benchApi(),
  tasks: () => benchTasks(),
  jobs: () => benchJobs(),
  audit: () => benchAudit(),
};

const only = process.argv.slice(2);
const results: Record<string, unknown> = {
  date: new Date().toISOString(),
  machine: { cpus: cpus().length, model: cpus()[0]?.model, loadavg: loadavg(), node: process.version },
};
const chosen = Object.entries(suites).filter(([name]) => only.length === 0 || only.includes(name));
const begun = performance.now();
for (const [i, [name, run]] of chosen.entries()) {
  // Progress on stderr (the results go to stdout): a whole run takes minutes.
  const step = `bench [${i + 1}/${chosen.length}] ${name}`;
  process.stderr.write(`${step}…\n`);
  const started = performance.now();
  // A line every 15 s while a suite runs, so a long one never looks stuck.
  const beat = setInterval(
    () =>
      process.stderr.write(
        `${step}: still running (${((performance.now() - started) / 1000).toFixed(0)} s)\n`,
      ),
    15_000,
  );
  try {
    results[name] = await run();
  } finally {
    clearInterval(beat);
  }
  const total = ((performance.now() - begun) / 1000).toFixed(1);
  process.stderr.write(
    `${step}: done in ${((performance.now() - started) / 1000).toFixed(1)} s (${total} s so far)\n`,
  );
}
const dir = fileURLToPath(new URL('./results/', import.meta.url));
mkdirSync(dir, { recursive: true });
const json = `${JSON.stringify(results, null, 2)}\n`;
writeFileSync(`${dir}latest.json`, json);
writeFileSync(`${dir}${(results.date as string).replace(/[:.]/g, '-')}.json`, json);
process.stdout.write(json);
process.exit(0);
