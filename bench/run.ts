import { spawn } from 'node:child_process';
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
 * `npm run bench`: every benchmark, one after the other, each suite in a fresh process of its own
 * (a suite that grew the heap — the TypeScript checker, the parsers — would make every later fork of
 * this process slower, bare runs included); results in bench/results/latest.json (and a timestamped
 * copy). Ratios compare runs measured in the same suite.
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

const MARK = '\n@@warden-bench-result@@\n';
const one = process.env.WARDEN_BENCH_SUITE;
if (one) {
  const result = await suites[one]!();
  process.stdout.write(`${MARK}${JSON.stringify(result)}\n`);
  process.exit(0);
}

/** Runs one suite in a child process (this file, with the same loader flags) and returns its result. */
function inChild(name: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url)], {
      env: { ...process.env, WARDEN_BENCH_SUITE: name },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const at = out.lastIndexOf(MARK);
      if (code !== 0 || at < 0) return reject(new Error(`bench suite ${name} failed (exit ${code})`));
      resolve(JSON.parse(out.slice(at + MARK.length)) as Record<string, unknown>);
    });
  });
}

const only = process.argv.slice(2);
const results: Record<string, unknown> = {
  date: new Date().toISOString(),
  machine: { cpus: cpus().length, model: cpus()[0]?.model, loadavg: loadavg(), node: process.version },
};
const chosen = Object.keys(suites).filter((name) => only.length === 0 || only.includes(name));
const begun = performance.now();
const failed: string[] = [];
for (const [i, name] of chosen.entries()) {
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
    results[name] = await inChild(name);
  } catch (err) {
    // The other suites still run and report; the bench exits 1 at the end.
    results[name] = { error: (err as Error).message };
    failed.push(name);
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
if (failed.length > 0) process.stderr.write(`bench: suites failed: ${failed.join(', ')}\n`);
process.exit(failed.length > 0 ? 1 : 0);
