import { errorFromAnswer, WardenConnectionError } from './errors.js';

/**
 * The SDK's one way to talk to Warden: fetch, the API key, Warden's error bodies as WardenError,
 * and retries of 429 and 503 (Warden refused the request without acting on it: the queue is full,
 * or a dependency is down), waiting as long as Retry-After says, within bounds.
 */

export interface RetryOptions {
  /** Retries after the first try (default 3; 0 turns retrying off). */
  maxRetries?: number;
  /** First backoff when the answer has no Retry-After; doubles per retry, with jitter (default 250). */
  baseDelayMs?: number;
  /**
   * The longest wait before a retry (default 30,000). A Retry-After longer than this is not waited
   * out: the error is thrown at once, so a caller is never held longer than it allowed.
   */
  maxDelayMs?: number;
}

export interface TransportOptions {
  /** e.g. `http://127.0.0.1:8080` */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <apiKey>` to Warden (never to another origin, e.g. S3). */
  apiKey?: string;
  /** Sent with every request to Warden. */
  headers?: Record<string, string>;
  retry?: RetryOptions;
  /** Defaults to the global fetch. */
  fetch?: typeof fetch;
}

export interface Call {
  method: 'GET' | 'POST' | 'DELETE';
  /** A path on Warden (`/jobs/…`) or an absolute URL (a signed artifact link). */
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  json?: unknown;
  form?: FormData;
  headers?: Record<string, string>;
  /** Statuses that are answers, not errors (e.g. 503 for /health). */
  accept?: number[];
  signal?: AbortSignal;
}

/** Waits `ms`, or rejects with the signal's reason as soon as it is aborted. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export class Transport {
  readonly baseUrl: string;
  private readonly origin: string;
  private readonly fetch: typeof fetch;
  private readonly maxRetries: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;

  constructor(private readonly options: TransportOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.origin = new URL(this.baseUrl).origin;
    this.fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.maxRetries = options.retry?.maxRetries ?? 3;
    this.baseDelayMs = options.retry?.baseDelayMs ?? 250;
    this.maxDelayMs = options.retry?.maxDelayMs ?? 30_000;
  }

  private url(call: Call): URL {
    const url = new URL(/^https?:\/\//.test(call.path) ? call.path : `${this.baseUrl}${call.path}`);
    for (const [k, v] of Object.entries(call.query ?? {})) {
      if (v !== undefined) url.searchParams.set(k, String(v));
    }
    return url;
  }

  private headers(url: URL, call: Call): Record<string, string> {
    // A signed link to another origin (S3) carries its own authority: Warden's key stays home.
    const own = url.origin === this.origin;
    return {
      ...(own ? this.options.headers : {}),
      ...(own && this.options.apiKey ? { authorization: `Bearer ${this.options.apiKey}` } : {}),
      ...(call.json !== undefined ? { 'content-type': 'application/json' } : {}),
      ...call.headers,
    };
  }

  /** The answer of a successful call (2xx or an accepted status); a WardenError otherwise. */
  async send(call: Call): Promise<Response> {
    const url = this.url(call);
    const init: RequestInit = {
      method: call.method,
      headers: this.headers(url, call),
      body: call.json !== undefined ? JSON.stringify(call.json) : call.form,
      signal: call.signal,
    };
    for (let attempt = 0; ; attempt++) {
      call.signal?.throwIfAborted();
      let res: Response;
      try {
        res = await this.fetch(url, init);
      } catch (err) {
        if (call.signal?.aborted) throw call.signal.reason;
        const why = (err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : '';
        throw new WardenConnectionError(
          `${call.method} ${url.origin}${url.pathname}: no answer${why ? ` (${why})` : ''}`,
          { cause: err },
        );
      }
      if (res.ok || call.accept?.includes(res.status)) return res;
      const error = errorFromAnswer(res.status, res.headers, await res.text());
      if ((res.status === 429 || res.status === 503) && attempt < this.maxRetries) {
        const wait =
          error.retryAfterSeconds !== null
            ? error.retryAfterSeconds * 1000
            : Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** attempt) * (0.5 + Math.random() / 2);
        if (wait <= this.maxDelayMs) {
          await sleep(wait, call.signal);
          continue;
        }
      }
      throw error;
    }
  }

  async json<T>(call: Call): Promise<{ status: number; body: T; headers: Headers }> {
    const res = await this.send({ ...call, headers: { accept: 'application/json', ...call.headers } });
    return { status: res.status, body: (await res.json()) as T, headers: res.headers };
  }
}
