// Started by engine.test.ts: begins a long run, says so on stdout, and waits to be SIGKILLed.
import { testEngine } from './helpers.js';

const engine = testEngine({ cgroupParent: process.argv[2] ?? 'warden' });
const run = engine.run({ argv: ['/bin/sh', '-c', 'exec /bin/sleep 5151'], limits: { wallTimeMs: 60_000 } });
setTimeout(() => process.stdout.write('running\n'), 500);
await run;
