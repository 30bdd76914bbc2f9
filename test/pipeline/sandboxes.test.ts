import { afterAll, expect, it } from 'vitest';
import { prewarmHarnesses } from '../../src/pipeline/index.js';
import { testEngine } from '../sandbox/helpers.js';

const pool = { size: 1, perLanguage: { javascript: 0, typescript: 0 }, maxIdleMs: 300_000 };
const engine = testEngine({ pool });
afterAll(() => engine.shutdown());

it('each role registering on one engine adds its own pre-started Python harness sandboxes', async () => {
  // The task and validation roles of one process: an upload's probe run and its first task follow
  // each other closely, and each must find a sandbox that has finished starting.
  prewarmHarnesses(engine, pool);
  prewarmHarnesses(engine, pool);
  expect(await engine.poolReady(30_000)).toBe(true);
  expect(engine.poolSizes()).toEqual({ 'python-task': 2 });
});
