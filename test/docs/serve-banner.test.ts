import { afterAll, describe, expect, it } from 'vitest';
import { cleanup, spawnWarden, tempDir } from '../helpers/processes.js';
import { until } from '../helpers/wait.js';

/** A new user starting `warden serve` is told where the dashboard and the API docs are, and they answer. */
describe('warden serve', () => {
  afterAll(() => cleanup());

  it('prints the dashboard and /docs addresses, and both answer', async () => {
    const serve = await spawnWarden('serve', {
      dataDir: tempDir(),
      config: { workers: { inProcess: false } },
    });
    const printed = await until(
      () => /warden: API docs (\S+)/.exec(serve.output()) ?? undefined,
      10_000,
      25,
      'the docs line',
    );
    const dashboard = /warden: dashboard (\S+)/.exec(serve.output())?.[1];
    expect(dashboard).toBe(`${serve.url}/ui`);
    expect(printed[1]).toBe(`${serve.url}/docs`);
    for (const url of [dashboard!, printed[1]!, `${serve.url}/docs/json`]) {
      const res = await fetch(url);
      expect(res.status, url).toBe(200);
    }
    await serve.stop();
  });
});
