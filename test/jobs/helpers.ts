import { expect } from 'vitest';
import { call } from '../helpers/server.js';
import { as } from '../helpers/tenants.js';
import { until as waitUntil } from '../helpers/wait.js';

/** Client side of the jobs API for tests: submit, wait, read the SSE log. */

export interface JobAnswer {
  id: string;
  status: string;
  verdict: string | null;
  exit_code: number | null;
  signal: string | null;
  error: string | null;
  usage: { cpu_time: number; peak_memory: number; wall_time: number } | null;
  artifacts: { path: string; size: number; sha256: string }[];
  skipped: { path: string; reason: string }[];
  created_at: string;
  preparing_at: string | null;
  running_at: string | null;
  collecting_at: string | null;
  finished_at: string | null;
  cancel_requested: boolean;
}

export const FINAL = ['completed', 'failed', 'timeout', 'cancelled', 'error'];

export const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');

export async function submit(base: string, body: Record<string, unknown>, user?: string): Promise<string> {
  const res = await call(base, 'POST', '/jobs', body, await as(base, user));
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body.id as string;
}

export async function job(base: string, id: string, user?: string): Promise<JobAnswer> {
  const res = await call<JobAnswer>(base, 'GET', `/jobs/${id}`, undefined, await as(base, user));
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body;
}

/** The shared bounded wait, with a job's longer default deadline. */
export const until = <T>(probe: () => Promise<T | undefined>, ms = 60_000): Promise<T> =>
  waitUntil(probe, ms);

export async function finished(base: string, id: string, user?: string): Promise<JobAnswer> {
  return until(async () => {
    const j = await job(base, id, user);
    return FINAL.includes(j.status) ? j : undefined;
  });
}

export async function runJob(base: string, body: Record<string, unknown>): Promise<JobAnswer> {
  return finished(base, await submit(base, body));
}

export interface SseEvent {
  id?: string;
  event: string;
  data: string;
}

/** An SSE connection read event by event. */
export async function openEvents(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ next(): Promise<SseEvent | undefined>; close(): void; contentType: string | null }> {
  const controller = new AbortController();
  const res = await fetch(url, { headers, signal: controller.signal });
  expect(res.status).toBe(200);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  return {
    contentType: res.headers.get('content-type'),
    async next() {
      for (;;) {
        const end = buffer.indexOf('\n\n');
        if (end >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const ev: SseEvent = { event: 'message', data: '' };
          let fields = 0;
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) continue;
            const colon = line.indexOf(':');
            const key = line.slice(0, colon);
            const value = line.slice(colon + 1).replace(/^ /, '');
            if (key === 'id') ev.id = value;
            if (key === 'event') ev.event = value;
            if (key === 'data') ev.data += value;
            if (key === 'id' || key === 'event' || key === 'data') fields++;
          }
          if (fields > 0) return ev;
          continue;
        }
        const { done, value } = await reader.read();
        if (done) return undefined;
        buffer += decoder.decode(value, { stream: true });
      }
    },
    close() {
      controller.abort();
    },
  };
}

/** Every event until the stream ends. */
export async function allEvents(url: string, headers: Record<string, string> = {}): Promise<SseEvent[]> {
  const stream = await openEvents(url, headers);
  const events: SseEvent[] = [];
  for (let ev = await stream.next(); ev; ev = await stream.next()) events.push(ev);
  return events;
}
