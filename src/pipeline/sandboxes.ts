import { harnessSandbox } from '../languages/harness/index.js';
import { LANGUAGES, poolSizeFor } from '../languages/index.js';
import type { Engine } from '../sandbox/engine.js';

/**
 * Keeps pre-started harness sandboxes (see harnessSandbox) for the task and validation workers, so a
 * task's run and an upload's probe run start with the harness's modules loaded. Registering twice
 * (both roles in one process) keeps one set; a language whose harness sandbox is its own shares the
 * language's pool.
 */
export function prewarmHarnesses(engine: Engine, pool: Parameters<typeof poolSizeFor>[0]): void {
  for (const lang of Object.values(LANGUAGES)) {
    const n = poolSizeFor(pool, lang);
    if (n > 0) engine.prewarm(harnessSandbox(lang), n);
  }
}
