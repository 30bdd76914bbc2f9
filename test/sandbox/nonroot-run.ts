// Run by test/sandbox/nonroot.ts as an unprivileged user, bundled into one file in a directory that
// user can read: runs what stdin describes through the bwrap backend, prints the results as JSON.
import { readFileSync } from 'node:fs';
import { sandboxConfigSchema } from '../../src/config/schema.js';
import { createEngine } from '../../src/sandbox/engine.js';
import type { RunResult } from '../../src/sandbox/types.js';
import type { NonRootJob } from './nonroot.js';

const job = JSON.parse(readFileSync(0, 'utf8')) as NonRootJob;
const engine = createEngine(sandboxConfigSchema.parse(job.config), { runtimeDir: job.runtimeDir });
if (job.prewarm) engine.prewarm(job.prewarm, 1);
const results: RunResult[] = [];
for (const { payload, ...run } of job.runs) {
  if (job.prewarm) await engine.poolReady(20_000);
  results.push(await engine.run({ ...run, payload: Buffer.from(payload, 'base64') }));
}
process.stdout.write(JSON.stringify(results));
await engine.shutdown();
