import { openStore } from '../../src/store/db.js';
import { getExecution, type ExecutionRecord } from '../../src/store/executions.js';
import { call, testConfig } from '../helpers/server.js';
import { until } from '../helpers/wait.js';

/** Client side of the fault tests: async executions submitted, then followed to their end. */

export interface Final {
  status: string;
  response: { status: string; output: string } | null;
}

/** Code whose output names it, so that an answer can be matched with its request. */
export const marked = (i: number, seconds = 0) =>
  seconds > 0 ? `import time\ntime.sleep(${seconds})\nprint("run ${i}")` : `print("run ${i}")`;

export interface Submitted {
  /** Request ids of the 202s, in submission order, with the index they were sent under. */
  accepted: { id: string; i: number }[];
  /** Every other answer: status and Retry-After. */
  refused: { status: number; retryAfter: string | null; code: string | undefined }[];
}

/**
 * Sends `count` async executions, `concurrency` at a time; `during(i, sofar)` runs before request i
 * (a fault injected under load). A request the server could not answer at all counts as refused with status 0.
 */
export async function submit(
  url: () => string,
  count: number,
  options: {
    concurrency?: number;
    seconds?: number;
    during?: (i: number, sofar: Submitted) => Promise<void>;
  } = {},
): Promise<Submitted> {
  const out: Submitted = { accepted: [], refused: [] };
  let next = 0;
  const one = async () => {
    for (let i = next++; i < count; i = next++) {
      await options.during?.(i, out);
      try {
        const res = await call<{ request_id?: string; error?: { code: string } }>(
          url(),
          'POST',
          '/execute?wait=false',
          { code: marked(i, options.seconds), language: 'python' },
        );
        if (res.status === 202 && res.body.request_id) out.accepted.push({ id: res.body.request_id, i });
        else
          out.refused.push({
            status: res.status,
            retryAfter: res.headers.get('retry-after'),
            code: res.body.error?.code,
          });
      } catch {
        out.refused.push({ status: 0, retryAfter: null, code: 'no answer' });
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 1 }, one));
  return out;
}

/** Polls every id until it is `done` or the deadline passes; the last state of each. */
export async function finals(
  url: () => string,
  ids: string[],
  ms: number,
): Promise<Map<string, Final | { status: string; response: null }>> {
  const last = new Map<string, Final>();
  await until(
    async () => {
      for (const id of ids) {
        if (last.get(id)?.status === 'done') continue;
        try {
          const res = await call<Final>(url(), 'GET', `/executions/${id}`);
          last.set(id, res.status === 200 ? res.body : { status: `http ${res.status}`, response: null });
        } catch {
          last.set(id, { status: 'no answer', response: null });
        }
      }
      return ids.every((id) => last.get(id)?.status === 'done') ? true : undefined;
    },
    ms,
    250,
    'every execution done',
  ).catch(() => undefined);
  return last;
}

/** What each accepted execution ended as: `success run <i>` when it ran and printed its marker. */
export function outcomes(
  accepted: { id: string; i: number }[],
  last: Map<string, { status: string; response: { status: string; output: string } | null }>,
): string[] {
  return accepted.map(({ id, i }) => {
    const final = last.get(id);
    if (final?.status !== 'done') return `${i}: ${final?.status ?? 'unknown'}`;
    return final.response?.status === 'success' && final.response.output === `run ${i}\n`
      ? 'success'
      : `${i}: ${final.response?.status} ${JSON.stringify(final.response?.output)}`;
  });
}

export async function queueCounts(url: string): Promise<{ waiting: number; active: number } | undefined> {
  try {
    const res = await call<{ checks: { queue: { waiting: number | null; active: number | null } } }>(
      url,
      'GET',
      '/health',
    );
    const { waiting, active } = res.body.checks.queue;
    return waiting === null || active === null ? undefined : { waiting, active };
  } catch {
    return undefined;
  }
}

/** The executions as stored (attempts, start times) in the SQLite store of `dataDir` or `databaseUrl`. */
export async function stored(
  dataDir: string,
  ids: string[],
  databaseUrl?: string,
): Promise<(ExecutionRecord | undefined)[]> {
  const store = await openStore(testConfig(dataDir, { store: { databaseUrl } }));
  try {
    return await Promise.all(ids.map((id) => getExecution(store.db, id)));
  } finally {
    await store.close();
  }
}
