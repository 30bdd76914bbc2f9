import { WardenConnectionError, WardenError, WardenTimeoutError } from './errors.js';
import { sleep, Transport, type Call, type RetryOptions } from './http.js';
import { readSse } from './sse.js';
import type {
  ApiKeyCreated,
  ApiKeyList,
  ApiKeyListQuery,
  ApiKeyRequest,
  ApiKeyRevoked,
  AuditPage,
  AuditQuery,
  BatchAnswer,
  BatchRequest,
  ArtifactLink,
  Execution,
  ExecutionAccepted,
  ExecutionList,
  ExecuteRequest,
  ExecuteResult,
  Health,
  Job,
  JobAccepted,
  JobCancelled,
  JobList,
  JobListQuery,
  JobRequest,
  Language,
  LogEvent,
  PageQuery,
  RuleCatalogue,
  ServiceInfo,
  Task,
  TaskCreated,
  TaskFileList,
  UploadAccepted,
  ValidateRequest,
  ValidateResult,
  ValidationStatus,
  WebhookDeliveries,
  WebhookDeliveriesQuery,
  WebhookSecret,
} from './types.js';

export interface WardenClientOptions {
  /** Where Warden listens, e.g. `http://127.0.0.1:8080`. */
  baseUrl: string;
  /** An API key: sent as `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** Extra headers for every request to Warden. */
  headers?: Record<string, string>;
  /** Retries of 429 and 503 answers (honouring Retry-After). */
  retry?: RetryOptions;
  /** How often the waiting helpers poll (default 500 ms). */
  pollIntervalMs?: number;
  fetch?: typeof fetch;
}

export interface CallOptions {
  signal?: AbortSignal;
}

export interface WaitOptions extends CallOptions {
  /** Give up (WardenTimeoutError) after this long; default 10 minutes. */
  timeoutMs?: number;
  /** Poll interval; default the client's pollIntervalMs. */
  intervalMs?: number;
}

export interface TaskFileUpload {
  /** The file name: its stem becomes the task's title, its extension says the language. */
  fileName: string;
  content: string | Uint8Array | Blob;
  /** Must agree with the extension when given. */
  language?: string;
  /** Payloads the handler must answer with JSON during validation. */
  samplePayloads?: unknown[];
}

export interface StreamLogsOptions extends CallOptions {
  /** Resume after this line (its `id`): the server replays only later lines. */
  lastEventId?: number;
  /** Reconnections in a row without a new line before giving up (default 5). */
  maxReconnects?: number;
}

export interface DownloadedArtifact {
  path: string;
  size: number;
  sha256: string;
  /** The file's bytes, checked against `sha256`. */
  bytes: Uint8Array;
}

const FINISHED_VALIDATION: ValidationStatus['status'][] = ['VALIDATED', 'REJECTED'];
const FINISHED_TASK: Task['status'][] = ['succeeded', 'failed', 'error'];
const UNFINISHED_JOB: Job['status'][] = ['queued', 'preparing', 'running', 'collecting'];
const DEFAULT_WAIT_MS = 10 * 60_000;

const enc = encodeURIComponent;
/** The server answers once the work has finished (or after its own wait runs out). */
const WAIT = { wait: 'true' };

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await globalThis.crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * A client of one Warden server. Every method takes an AbortSignal; answers Warden refuses with 429
 * or 503 are retried as the server's Retry-After says; any other error answer is a WardenError with
 * the server's `code`, `field` and `requestId`.
 */
export class WardenClient {
  private readonly http: Transport;
  private readonly pollIntervalMs: number;

  constructor(options: WardenClientOptions) {
    this.http = new Transport(options);
    this.pollIntervalMs = options.pollIntervalMs ?? 500;
  }

  private async get<T>(path: string, options: CallOptions, query?: Call['query']): Promise<T> {
    return (await this.http.json<T>({ method: 'GET', path, query, signal: options.signal })).body;
  }

  private async post<T>(
    path: string,
    json: unknown,
    options: CallOptions,
    query?: Call['query'],
  ): Promise<T> {
    return (await this.http.json<T>({ method: 'POST', path, json, query, signal: options.signal })).body;
  }

  /** Name, version, languages and endpoints of the server. */
  info(options: CallOptions = {}): Promise<ServiceInfo> {
    return this.get('/', options);
  }

  /** The server's checks; a degraded server answers too (`status: "degraded"`), it is not an error. */
  async health(options: CallOptions = {}): Promise<Health> {
    // 503 is an answer here, not a reason to wait: ask once.
    const res = await this.http.send({
      method: 'GET',
      path: '/health',
      accept: [503],
      headers: { accept: 'application/json' },
      signal: options.signal,
    });
    return (await res.json()) as Health;
  }

  async languages(options: CallOptions = {}): Promise<Language[]> {
    return (await this.get<{ languages: Language[] }>('/languages', options)).languages;
  }

  /** The static rules of a language and which of them reject code on this server. */
  rules(language: string, options: CallOptions = {}): Promise<RuleCatalogue> {
    return this.get(`/languages/${enc(language)}/validate`, options);
  }

  /** Static analysis only: would this code be run? */
  validate(request: ValidateRequest, options: CallOptions = {}): Promise<ValidateResult> {
    return this.post('/validate', request, options);
  }

  /**
   * Checks and runs code, and resolves with its result. When the server's own wait runs out (202),
   * this polls the execution until it is done.
   */
  async execute(request: ExecuteRequest, options: WaitOptions = {}): Promise<ExecuteResult> {
    const answer = await this.http.json<ExecuteResult | ExecutionAccepted>({
      method: 'POST',
      path: '/execute',
      json: request,
      signal: options.signal,
    });
    if (answer.status === 200) return answer.body as ExecuteResult;
    const { request_id } = answer.body as ExecutionAccepted;
    const done = await this.until(
      (call) => this.getExecution(request_id, call),
      (e) => e.status === 'done' && e.response !== null,
      options,
      `execution ${request_id}`,
    );
    return done.response!;
  }

  /** Queues code without waiting (`wait=false`); follow it with getExecution. */
  submitExecution(request: ExecuteRequest, options: CallOptions = {}): Promise<ExecutionAccepted> {
    return this.post('/execute', request, options, { wait: 'false' });
  }

  getExecution(requestId: string, options: CallOptions = {}): Promise<Execution> {
    return this.get(`/executions/${enc(requestId)}`, options);
  }

  /** Your executions, newest first, one page at a time (`next_cursor` → `cursor`). */
  listExecutions(query: PageQuery = {}, options: CallOptions = {}): Promise<ExecutionList> {
    return this.get('/executions', options, query);
  }

  /**
   * Up to 20 executions in one call (Judge0's batch). Each submission is answered in its place:
   * accepted (`request_id`, follow it with getExecution) or refused (`error`, its field under
   * `submissions.N`). `wait: true` asks the server to wait for all of them.
   */
  async executeBatch(
    request: BatchRequest,
    options: CallOptions & { wait?: boolean } = {},
  ): Promise<BatchAnswer> {
    const query = { wait: options.wait ? 'true' : 'false' };
    return (
      await this.http.json<BatchAnswer>({
        method: 'POST',
        path: '/execute/batch',
        json: request,
        query,
        signal: options.signal,
      })
    ).body;
  }

  /** The secret your callbacks' `X-Warden-Signature` is made with (created on first use). */
  webhookSecret(options: CallOptions = {}): Promise<WebhookSecret> {
    return this.get('/webhooks/secret', options);
  }

  /** A new webhook secret; callbacks sent from now on are signed with it. */
  rotateWebhookSecret(options: CallOptions = {}): Promise<WebhookSecret> {
    return this.post('/webhooks/secret', {}, options);
  }

  /** A callback's state and every delivery attempt, for one of your resources. */
  webhookDeliveries(query: WebhookDeliveriesQuery, options: CallOptions = {}): Promise<WebhookDeliveries> {
    return this.get('/webhooks/deliveries', options, query);
  }

  /** Admin scope: a new API key, shown this once. */
  async createApiKey(request: ApiKeyRequest, options: CallOptions = {}): Promise<ApiKeyCreated> {
    return this.post('/admin/keys', request, options);
  }

  /** Admin scope: the keys (never their secret part). */
  listApiKeys(query: ApiKeyListQuery = {}, options: CallOptions = {}): Promise<ApiKeyList> {
    return this.get('/admin/keys', options, query);
  }

  /** Admin scope: revokes a key at once on every node. */
  async revokeApiKey(id: string, options: CallOptions = {}): Promise<ApiKeyRevoked> {
    const call = { method: 'DELETE', path: `/admin/keys/${enc(id)}`, signal: options.signal } as const;
    return (await this.http.json<ApiKeyRevoked>(call)).body;
  }

  /** Admin scope: the audit log, newest first, one page at a time (`next_cursor` → `cursor`). */
  audit(query: Partial<AuditQuery> = {}, options: CallOptions = {}): Promise<AuditPage> {
    return this.get('/audit', options, query);
  }

  /** Uploads a task file; it is validated in the background (see waitForValidation). */
  async uploadTaskFile(upload: TaskFileUpload, options: CallOptions = {}): Promise<UploadAccepted> {
    const form = new FormData();
    const content =
      upload.content instanceof Blob
        ? upload.content
        : new Blob([upload.content as string | Uint8Array<ArrayBuffer>]);
    if (upload.language !== undefined) form.set('language', upload.language);
    if (upload.samplePayloads !== undefined)
      form.set('sample_payloads', JSON.stringify(upload.samplePayloads));
    form.set('file', content, upload.fileName);
    const call = { method: 'POST', path: '/tasks/upload_file', form, signal: options.signal } as const;
    return (await this.http.json<UploadAccepted>(call)).body;
  }

  validationStatus(validationId: string, options: CallOptions = {}): Promise<ValidationStatus> {
    return this.get(`/tasks/validation_status/${enc(validationId)}`, options);
  }

  /** Waits until an upload is VALIDATED or REJECTED (a rejection resolves too: read `reasons`). */
  waitForValidation(validationId: string, options: WaitOptions = {}): Promise<ValidationStatus> {
    return this.until(
      // The server answers once it is decided (or after its own wait runs out: then ask again).
      (call) => this.get<ValidationStatus>(`/tasks/validation_status/${enc(validationId)}`, call, WAIT),
      (v) => FINISHED_VALIDATION.includes(v.status),
      options,
      `validation ${validationId}`,
    );
  }

  /** Your uploaded task files with their validation status, newest first, one page at a time. */
  listTaskFiles(query: PageQuery = {}, options: CallOptions = {}): Promise<TaskFileList> {
    return this.get('/tasks/files', options, query);
  }

  /** Starts the handler of a validated task file with a payload; follow it with getTask. */
  createTask(title: string, payload: unknown, options: CallOptions = {}): Promise<TaskCreated> {
    return this.post('/tasks', { title, payload }, options);
  }

  getTask(taskId: string, options: CallOptions = {}): Promise<Task> {
    return this.get(`/tasks/${enc(taskId)}`, options);
  }

  /** Runs a validated task file's handler and resolves when it has finished (succeeded, failed or error). */
  async runTask(title: string, payload: unknown, options: WaitOptions = {}): Promise<Task> {
    const { task_id } = await this.createTask(title, payload, options);
    return this.until(
      (call) => this.get<Task>(`/tasks/${enc(task_id)}`, call, WAIT),
      (t) => FINISHED_TASK.includes(t.status),
      options,
      `task ${task_id}`,
    );
  }

  /** Queues a job (a command with files, environment and limits); it runs on a job worker. */
  createJob(request: JobRequest, options: CallOptions = {}): Promise<JobAccepted> {
    return this.post('/jobs', request, options);
  }

  getJob(id: string, options: CallOptions = {}): Promise<Job> {
    return this.get(`/jobs/${enc(id)}`, options);
  }

  /** Your jobs, newest first, one page at a time (`next_cursor` → `cursor`). */
  listJobs(query: Partial<JobListQuery> = {}, options: CallOptions = {}): Promise<JobList> {
    return this.get('/jobs', options, query);
  }

  async cancelJob(id: string, options: CallOptions = {}): Promise<JobCancelled> {
    const call = { method: 'DELETE', path: `/jobs/${enc(id)}`, signal: options.signal } as const;
    return (await this.http.json<JobCancelled>(call)).body;
  }

  /** Polls a job until it has finished. */
  waitForJob(id: string, options: WaitOptions = {}): Promise<Job> {
    return this.until(
      (call) => this.getJob(id, call),
      (j) => !UNFINISHED_JOB.includes(j.status),
      options,
      `job ${id}`,
    );
  }

  /**
   * A job's log as it is written: one `line` event per output line, then one `end` event with the
   * final status. A dropped connection is resumed where it stopped (Last-Event-ID), so no line is
   * lost or repeated; breaking out of the loop or aborting the signal closes the stream.
   */
  async *streamLogs(id: string, options: StreamLogsOptions = {}): AsyncGenerator<LogEvent> {
    let last = options.lastEventId ?? 0;
    let retryMs = 1000;
    let failures = 0;
    const maxReconnects = options.maxReconnects ?? 5;
    for (;;) {
      let res: Response;
      try {
        res = await this.http.send({
          method: 'GET',
          path: `/jobs/${enc(id)}/logs`,
          headers: { accept: 'text/event-stream', ...(last > 0 ? { 'last-event-id': String(last) } : {}) },
          signal: options.signal,
        });
      } catch (err) {
        if (!(err instanceof WardenConnectionError) || ++failures > maxReconnects) throw err;
        await sleep(retryMs, options.signal);
        continue;
      }
      if (!res.body) throw new WardenConnectionError(`GET /jobs/${id}/logs: an answer without a body`);
      try {
        for await (const event of readSse(res.body, (ms) => (retryMs = Math.min(ms, 30_000)))) {
          if (event.event === 'end') {
            const { status } = JSON.parse(event.data) as { status: Job['status'] | 'gone' };
            yield { type: 'end', status };
            return;
          }
          if (event.event !== 'message' || event.id === null) continue;
          const data = JSON.parse(event.data) as Omit<Extract<LogEvent, { type: 'line' }>, 'type' | 'id'>;
          last = Number(event.id);
          failures = 0;
          yield { type: 'line', id: last, stream: data.stream, line: data.line, time: data.time };
        }
      } catch (err) {
        if (options.signal?.aborted) throw options.signal.reason;
        if (err instanceof SyntaxError) throw err;
        // The connection broke mid-stream: resume below.
      }
      options.signal?.throwIfAborted();
      if (++failures > maxReconnects) {
        throw new WardenConnectionError(
          `the log stream of job ${id} closed ${failures} times without its end event (last line ${last})`,
        );
      }
      await sleep(retryMs, options.signal);
    }
  }

  /** Signed, expiring download links of a job's artifacts. */
  artifacts(id: string, options: CallOptions = {}): Promise<ArtifactLink[]> {
    return this.get(`/jobs/${enc(id)}/artifacts`, options);
  }

  /** Every artifact of a job, downloaded and checked against its sha256. */
  async downloadArtifacts(id: string, options: CallOptions = {}): Promise<DownloadedArtifact[]> {
    const links = await this.artifacts(id, options);
    const files: DownloadedArtifact[] = [];
    for (const link of links) {
      const res = await this.http.send({ method: 'GET', path: link.url, signal: options.signal });
      const bytes = new Uint8Array(await res.arrayBuffer());
      const sha256 = await sha256Hex(bytes);
      if (sha256 !== link.sha256) {
        throw new WardenError(
          502,
          'artifact_corrupt',
          `artifact ${link.path}: downloaded bytes hash to ${sha256}, not ${link.sha256}`,
          'path',
          null,
          null,
          null,
        );
      }
      files.push({ path: link.path, size: link.size, sha256, bytes });
    }
    return files;
  }

  /**
   * Asks `get` until `done` says yes, the signal is aborted or the time is up. Each call gets a
   * signal that also ends at the deadline: a server-side wait (`wait=true`) may last longer.
   */
  private async until<T>(
    get: (call: CallOptions) => Promise<T>,
    done: (value: T) => boolean,
    options: WaitOptions,
    what: string,
  ): Promise<T> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_WAIT_MS;
    const deadline = AbortSignal.timeout(timeoutMs);
    const signal = options.signal ? AbortSignal.any([options.signal, deadline]) : deadline;
    const every = options.intervalMs ?? this.pollIntervalMs;
    const timedOut = () => new WardenTimeoutError(`${what} has not finished within ${timeoutMs} ms`);
    try {
      for (;;) {
        const value = await get({ signal });
        if (done(value)) return value;
        await sleep(every, signal);
      }
    } catch (err) {
      if (deadline.aborted && !options.signal?.aborted) throw timedOut();
      throw err;
    }
  }
}
