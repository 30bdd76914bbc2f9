// Started by engine.test.ts and gvisor.test.ts: begins a long run (on the backend named, default
// bwrap), says so on stdout, and waits to be SIGKILLed.
import type { BackendName } from '../../src/sandbox/types.js';
import { testEngine } from './helpers.js';

const engine = testEngine({ cgroupParent: process.argv[2] ?? 'warden' });
const run = engine.run(
  { argv: ['/bin/sh', '-c', 'exec /bin/sleep 5151'], limits: { wallTimeMs: 60_000 } },
  { backend: (process.argv[3] ?? 'bwrap') as BackendName },
);
setTimeout(() => process.stdout.write('running\n'), 500);
await run;
