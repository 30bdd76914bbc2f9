// Started by docker.test.ts: a service with 10 pre-started docker containers; says so, then waits to be SIGKILLed.
import { LANGUAGES, languageSandbox } from '../../src/languages/index.js';
import { testEngine } from './helpers.js';

const engine = testEngine({ backend: 'docker' });
engine.prewarm(languageSandbox(LANGUAGES.python), 10);
if (await engine.poolReady(120_000)) process.stdout.write('ready\n');
setInterval(() => {}, 60_000);
