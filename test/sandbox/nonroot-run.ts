// Started by engine.test.ts as an unprivileged user: one run through the bwrap backend, printed as JSON.
import { createEngine } from '../../src/sandbox/engine.js';
import { sandboxConfigSchema } from '../../src/config/schema.js';
import { LANGUAGES, buildRun } from '../../src/languages/index.js';

const engine = createEngine(sandboxConfigSchema.parse({ pool: { size: 0 } }), {
  runtimeDir: process.argv[2],
});
const code = process.argv[3] ?? 'import os\nprint(os.getuid())';
const result = await engine.run(await buildRun(LANGUAGES.python, code, { limits: { cpuTimeMs: 1000 } }));
process.stdout.write(JSON.stringify(result));
await engine.shutdown();
