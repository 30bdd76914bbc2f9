import type { ExecutionResponse } from '../../src/runner/index.js';
import { call } from '../helpers/server.js';

/** Asks `probe` every 25 ms until it returns a value, failing the test past `ms`. */
export async function until<T>(
  probe: () => Promise<T | undefined>,
  ms = 30_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what} not reached in ${ms} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export interface ExecutionState {
  request_id: string;
  status: 'pending' | 'running' | 'done';
  response: ExecutionResponse | null;
}

export const execution = async (url: string, id: string) =>
  (await call<ExecutionState>(url, 'GET', `/executions/${id}`)).body;

/** Polls until the execution is done; its response. */
export const finished = (url: string, id: string, ms = 60_000) =>
  until(
    async () => {
      const state = await execution(url, id);
      return state.status === 'done' ? state.response! : undefined;
    },
    ms,
    `execution ${id} done`,
  );

/** POST /execute?wait=false; the request id. */
export async function submit(url: string, body: unknown): Promise<string> {
  const res = await call<{ request_id: string }>(url, 'POST', '/execute?wait=false', body);
  if (res.status !== 202) throw new Error(`submit answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body.request_id;
}
