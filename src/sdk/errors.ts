/** Errors the SDK throws: one for an answer Warden gave, one for no answer at all. */

/**
 * Warden answered with an error (4xx or 5xx). `code`, `field` and `requestId` are the server's own
 * (`{ error: { code, message, field, request_id } }`); `body` is the whole answer, which for some
 * errors carries more (a 412 says the task file's status).
 */
export class WardenError extends Error {
  override readonly name = 'WardenError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field: string | null,
    readonly requestId: string | null,
    /** Seconds, from the Retry-After header of a 429 or 503. */
    readonly retryAfterSeconds: number | null,
    readonly body: unknown,
  ) {
    super(message);
  }
}

/** The request never got an answer (connection refused or reset, DNS, TLS). */
export class WardenConnectionError extends Error {
  override readonly name = 'WardenConnectionError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A wait the SDK does on the caller's behalf (validation, task, job, execution) ran out of time. */
export class WardenTimeoutError extends Error {
  override readonly name = 'WardenTimeoutError';
}

interface ServerError {
  error?: { code?: unknown; message?: unknown; field?: unknown; request_id?: unknown };
}

/** Reads Warden's error body; an answer that is not one (e.g. a proxy's HTML page) still becomes a WardenError. */
export function errorFromAnswer(status: number, headers: Headers, text: string): WardenError {
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  const err = (body as ServerError | null)?.error;
  const str = (v: unknown) => (typeof v === 'string' ? v : null);
  const message = str(err?.message) ?? (text.trim().slice(0, 200) || `HTTP ${status} without a body`);
  return new WardenError(
    status,
    str(err?.code) ?? `http_${status}`,
    message,
    str(err?.field),
    str(err?.request_id) ?? headers.get('x-request-id'),
    retryAfterSeconds(headers.get('retry-after')),
    body,
  );
}

/** Retry-After as seconds: a number of seconds or an HTTP date; null when absent or unreadable. */
export function retryAfterSeconds(value: string | null, now = Date.now()): number | null {
  if (value === null || value.trim() === '') return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - now) / 1000));
}
