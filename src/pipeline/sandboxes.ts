import { harnessSandbox } from '../languages/harness/index.js';
import { LANGUAGES, poolSizeFor, type LanguageId } from '../languages/index.js';
import type { Engine } from '../sandbox/engine.js';

/** Per engine: how many roles (task, validation) asked for each language's own harness sandboxes. */
const roles = new WeakMap<Engine, Map<LanguageId, number>>();

/**
 * Keeps pre-started harness sandboxes (see harnessSandbox) for the task and validation workers, so a
 * task's run and an upload's probe run start with the harness's modules loaded.
 *
 * Each role that registers on an engine adds its pool's worth: the two roles' runs come in pairs (an
 * upload, then its tasks), and a Python harness sandbox needs ≈ 35 ms of CPU after its start
 * (importing asyncio) before it can serve. Sharing one set of `n`, the second of two quick runs took
 * the sandbox started after the first and waited for its imports: 37–52 ms instead of 5–6 for the
 * run (scratch measurement, pool of 2, runs 0–15 ms apart). A language whose harness sandbox is its
 * own (JavaScript, TypeScript: the harness is shipped with each run) shares the language's pool.
 */
export function prewarmHarnesses(engine: Engine, pool: Parameters<typeof poolSizeFor>[0]): void {
  const counts = roles.get(engine) ?? new Map<LanguageId, number>();
  roles.set(engine, counts);
  for (const lang of Object.values(LANGUAGES)) {
    const n = poolSizeFor(pool, lang);
    if (n === 0) continue;
    const spec = harnessSandbox(lang);
    if (spec.label === lang.id) {
      engine.prewarm(spec, n);
      continue;
    }
    const registered = (counts.get(lang.id) ?? 0) + 1;
    counts.set(lang.id, registered);
    engine.prewarm(spec, n * registered);
  }
}
