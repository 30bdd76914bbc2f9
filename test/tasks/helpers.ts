import { existsSync, readdirSync } from 'node:fs';
import { call, type Answer } from '../helpers/server.js';
import { as } from '../helpers/tenants.js';
import { until } from '../helpers/wait.js';

/** Client side of the task-file API for tests: uploads, polling, task runs. */

export interface ValidationStatus {
  validation_id: string;
  status: 'PENDING' | 'VALIDATING' | 'VALIDATED' | 'REJECTED';
  reasons: string[];
  checked_at: string | null;
  title: string;
  file_name: string;
  report: { warnings: string[]; usage: { cpu_time: number } | null } | null;
}

export interface TaskAnswer {
  task_id: string;
  status: 'queued' | 'running' | 'succeeded' | 'failed' | 'error';
  result: unknown;
  error: string | null;
  usage: { cpu_time: number; peak_memory: number; wall_time: number } | null;
  validation_id: string | null;
  attempts: number;
}

export type ErrorAnswer = { error: { code: string; message: string; field: string | null } };

export async function upload(
  base: string,
  fileName: string,
  code: string | Uint8Array<ArrayBuffer>,
  options: { language?: string; samplePayloads?: string; user?: string } = {},
): Promise<Answer> {
  const form = new FormData();
  form.append('file', new Blob([code]), fileName);
  if (options.language !== undefined) form.append('language', options.language);
  if (options.samplePayloads !== undefined) form.append('sample_payloads', options.samplePayloads);
  const res = await fetch(`${base}/tasks/upload_file`, {
    method: 'POST',
    body: form,
    headers: await as(base, options.user),
  });
  const text = await res.text();
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = { text };
  }
  return { status: res.status, headers: res.headers, body };
}

export { until };

export async function status(base: string, validationId: string, user?: string): Promise<ValidationStatus> {
  const res = await call<ValidationStatus>(
    base,
    'GET',
    `/tasks/validation_status/${validationId}`,
    undefined,
    await as(base, user),
  );
  if (res.status !== 200) throw new Error(`validation status: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

export function verdict(
  base: string,
  validationId: string,
  user?: string,
  ms?: number,
): Promise<ValidationStatus> {
  return until(async () => {
    const s = await status(base, validationId, user);
    return s.status === 'VALIDATED' || s.status === 'REJECTED' ? s : undefined;
  }, ms);
}

/** Uploads and waits for the verdict; fails the test when the upload is not accepted. */
export async function validated(
  base: string,
  fileName: string,
  code: string,
  options: { language?: string; samplePayloads?: string; user?: string } = {},
): Promise<ValidationStatus> {
  const res = await upload(base, fileName, code, options);
  if (res.status !== 202) throw new Error(`upload ${fileName}: ${res.status} ${JSON.stringify(res.body)}`);
  return verdict(base, res.body.validation_id as string, options.user);
}

export async function runTask(
  base: string,
  title: string,
  payload: unknown,
  user?: string,
): Promise<TaskAnswer> {
  const headers = await as(base, user);
  const created = await call<{ task_id: string; poll: string }>(
    base,
    'POST',
    '/tasks',
    { title, payload },
    headers,
  );
  if (created.status !== 201)
    throw new Error(`POST /tasks: ${created.status} ${JSON.stringify(created.body)}`);
  return until(async () => {
    const res = await call<TaskAnswer>(base, 'GET', created.body.poll, undefined, headers);
    return res.body.status === 'queued' || res.body.status === 'running' ? undefined : res.body;
  });
}

export const ls = (dir: string) => (existsSync(dir) ? readdirSync(dir).sort() : []);
