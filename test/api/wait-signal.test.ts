import { setMaxListeners } from 'node:events';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitSignal } from '../../src/api/submit.js';
import { until } from '../helpers/wait.js';

/**
 * A request's wait (a synchronous POST /execute, `?wait=true` on tasks and verdicts) ends when its
 * client goes away or the service shuts down, not at the timeout: a thousand abandoned waits must not
 * hold their timers, sockets and store checks. Real HTTP, a route that waits only for the signal.
 */
describe('waitSignal', () => {
  const app = Fastify();
  const shutdown = new AbortController();
  setMaxListeners(0, shutdown.signal); // as the service does: one listener per waiting request
  let started = 0;
  let ended = 0;
  let url = '';
  beforeAll(async () => {
    app.get('/wait', async (_req, reply) => {
      const signal = waitSignal({ shutdown: shutdown.signal }, reply);
      started++;
      if (!signal.aborted)
        await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
      ended++;
      return 'ended';
    });
    url = await app.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(() => app.close());

  it('ends every wait whose client went away', async () => {
    const clients = new AbortController();
    const waits = Array.from({ length: 200 }, () =>
      fetch(`${url}/wait`, { signal: clients.signal }).catch((e: Error) => e.name),
    );
    await until(() => (started === 200 ? true : undefined), 30_000, 25, 'every wait started');
    clients.abort();
    expect(new Set(await Promise.all(waits))).toEqual(new Set(['AbortError']));
    await until(() => (ended === 200 ? true : undefined), 10_000, 25, 'every wait ended');
    expect(ended).toBe(200);
  });

  it('ends the waits in progress when the service shuts down', async () => {
    started = ended = 0;
    const waits = Array.from({ length: 5 }, () => fetch(`${url}/wait`).then((r) => r.text()));
    await until(() => (started === 5 ? true : undefined), 30_000, 25, 'every wait started');
    shutdown.abort();
    expect(await Promise.all(waits)).toEqual(Array(5).fill('ended'));
    // A wait that starts after the shutdown ends at once.
    expect(await (await fetch(`${url}/wait`)).text()).toBe('ended');
  });
});
