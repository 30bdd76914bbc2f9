import type { ExecutionResponse } from '../../src/runner/index.js';
import { call } from '../helpers/server.js';
import { until } from '../helpers/wait.js';

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
    25,
    `execution ${id} done`,
  );

/** POST /execute?wait=false; the request id. */
export async function submit(url: string, body: unknown): Promise<string> {
  const res = await call<{ request_id: string }>(url, 'POST', '/execute?wait=false', body);
  if (res.status !== 202) throw new Error(`submit answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body.request_id;
}
