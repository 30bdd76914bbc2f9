/**
 * The dashboard: one module, no framework, talking to the same HTTP API as every other client (with
 * the API key from the key box as a Bearer token when the server wants one). Whatever came from a
 * user or a run (code, output, file names, reasons, log lines) reaches the page through
 * `textContent` only, never as HTML, so printed markup stays text; the server's CSP refuses inline
 * scripts as a second wall.
 */

const KEY_STORAGE = 'warden.apiKey';
const POLL_MS = 500;
const HEALTH_REFRESH_MS = 5000;

// --- DOM ---------------------------------------------------------------------------------------

function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`the page has no #${id}`);
  return found as T;
}

type Child = Node | string;

/** An element with text children only: strings become text nodes, never markup. */
function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: { className?: string; title?: string; data?: Record<string, string> } = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (props.className) node.className = props.className;
  if (props.title) node.title = props.title;
  for (const [k, v] of Object.entries(props.data ?? {})) node.dataset[k] = v;
  node.append(...children);
  return node;
}

function badge(text: string): HTMLSpanElement {
  return el('span', { className: `badge status-${text.replace(/[^A-Za-z0-9_-]/g, '')}` }, text);
}

function facts(list: HTMLElement, entries: [string, Child][]): void {
  list.replaceChildren(...entries.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
}

const seconds = (s: number | null | undefined) => (s === null || s === undefined ? '–' : `${s.toFixed(3)} s`);

function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '–';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

const when = (iso: string | null | undefined) => (iso ? new Date(iso).toLocaleString() : '–');
const shortId = (id: string) => id.slice(0, 8);

// --- API ---------------------------------------------------------------------------------------

class ApiFailure extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function authHeaders(): Record<string, string> {
  const key = sessionStorage.getItem(KEY_STORAGE);
  return key ? { authorization: `Bearer ${key}` } : {};
}

async function send(path: string, init: RequestInit = {}): Promise<Response> {
  const res = await fetch(path, { ...init, headers: { ...authHeaders(), ...(init.headers ?? {}) } });
  if (res.status === 401) showKeyBox('this server wants an API key');
  return res;
}

/** The parsed JSON answer, or an ApiFailure carrying the server's own message and field. */
async function api<T>(path: string, init: RequestInit = {}, alsoOk: number[] = []): Promise<T> {
  const res = await send(path, init);
  const body: unknown = await res.json().catch(() => null);
  if (res.ok || alsoOk.includes(res.status)) return body as T;
  const error = (body as { error?: { message?: string; field?: string | null } } | null)?.error;
  const where = error?.field ? ` (${error.field})` : '';
  throw new ApiFailure(res.status, `${res.status}: ${error?.message ?? res.statusText}${where}`);
}

const postJson = <T>(path: string, body: unknown) =>
  api<T>(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

function notify(message: string | null): void {
  const notice = byId('notice');
  notice.textContent = message ?? '';
  notice.hidden = message === null;
}

/** Runs a UI action, turning its failure into the notice line instead of an unhandled rejection. */
function guarded(action: () => Promise<void>): () => void {
  return () => {
    action().catch((err: unknown) => notify(err instanceof Error ? err.message : String(err)));
  };
}

// --- API key -----------------------------------------------------------------------------------

function showKeyBox(why: string): void {
  byId('key-form').hidden = false;
  byId('key-state').textContent = sessionStorage.getItem(KEY_STORAGE) ? 'key set' : why;
}

/** /health says whether keys are required; an older server says nothing, and a 401 shows the box anyway. */
function authRequired(health: Record<string, unknown>): boolean {
  const auth = health.auth ?? health.auth_mode;
  const off = (mode: unknown) => typeof mode === 'string' && ['off', 'none', 'disabled'].includes(mode);
  if (typeof auth === 'string') return !off(auth);
  if (typeof auth === 'boolean') return auth;
  if (auth && typeof auth === 'object') {
    const a = auth as Record<string, unknown>;
    if (typeof a.required === 'boolean') return a.required;
    if (typeof a.enabled === 'boolean') return a.enabled;
    if (typeof a.mode === 'string') return !off(a.mode);
  }
  return false;
}

function setUpKeyBox(): void {
  const form = byId<HTMLFormElement>('key-form');
  const field = byId<HTMLInputElement>('key-input');
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (field.value.trim()) sessionStorage.setItem(KEY_STORAGE, field.value.trim());
    field.value = '';
    byId('key-state').textContent = 'key set';
    notify(null);
    route();
  });
  byId('key-forget').addEventListener('click', () => {
    sessionStorage.removeItem(KEY_STORAGE);
    byId('key-state').textContent = 'no key';
  });
  if (sessionStorage.getItem(KEY_STORAGE)) showKeyBox('key set');
}

// --- Results (the runner and the executions list share them) -----------------------------------

interface Violation {
  rule: string;
  severity: string;
  message: string;
  line: number | null;
  source: string;
}

interface ExecutionResponse {
  status: string;
  output: string;
  errors: string[];
  resource_usage: { cpu_time: number; peak_memory: number; wall_time: number };
  security_violations: Violation[];
  test_results: { name: string; passed: boolean; status: string; actual_output: string }[];
  execution_time: number;
  truncated: boolean;
}

function renderResult(box: HTMLElement, res: ExecutionResponse): void {
  const usage = res.resource_usage;
  const dl = el('dl');
  facts(dl, [
    ['CPU', seconds(usage.cpu_time)],
    ['Peak memory', bytes(usage.peak_memory)],
    ['Wall', seconds(usage.wall_time)],
    ['Total', seconds(res.execution_time)],
  ]);
  const parts: HTMLElement[] = [el('h3', {}, 'Verdict ', badge(res.status)), dl];
  parts.push(el('h4', {}, 'Output'), el('pre', { className: 'stdout' }, res.output));
  if (res.errors.length > 0)
    parts.push(el('h4', {}, 'Errors'), el('pre', { className: 'stderr' }, res.errors.join('\n')));
  if (res.security_violations.length > 0) {
    parts.push(
      el('h4', {}, 'Security violations'),
      el(
        'ul',
        { className: 'violations' },
        ...res.security_violations.map((v) =>
          el(
            'li',
            {},
            `${v.rule} (${v.severity}, ${v.source}${v.line ? `, line ${v.line}` : ''}): ${v.message}`,
          ),
        ),
      ),
    );
  }
  if (res.test_results.length > 0) {
    parts.push(
      el('h4', {}, 'Test cases'),
      el(
        'ul',
        {},
        ...res.test_results.map((t) =>
          el('li', {}, `${t.name}: ${t.passed ? 'passed' : 'failed'} `, badge(t.status)),
        ),
      ),
    );
  }
  if (res.truncated) parts.push(el('p', { className: 'muted' }, 'Some output was cut (see errors).'));
  box.replaceChildren(...parts);
  box.hidden = false;
}

interface ExecutionState {
  status: 'pending' | 'running' | 'done';
  response: ExecutionResponse | null;
}

const boxClaims = new WeakMap<HTMLElement, object>();

/** Makes the caller the one filling `box`; an earlier poller for it sees `current()` turn false. */
function claimBox(box: HTMLElement): { current(): boolean } {
  const token = {};
  boxClaims.set(box, token);
  return { current: () => boxClaims.get(box) === token };
}

/** Polls an accepted execution until it is done (the server's own wait may end first). */
async function awaitExecution(requestId: string, box: HTMLElement): Promise<void> {
  const claim = claimBox(box);
  for (;;) {
    const state = await api<ExecutionState>(`/executions/${encodeURIComponent(requestId)}`);
    if (!claim.current()) return;
    if (state.status === 'done' && state.response) return renderResult(box, state.response);
    box.replaceChildren(el('p', {}, 'State ', badge(state.status)));
    box.hidden = false;
    await pause(POLL_MS);
  }
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// --- Executions --------------------------------------------------------------------------------

interface ExecutionSummary {
  request_id: string;
  language: string;
  status: string;
  verdict: string | null;
  resource_usage: { cpu_time: number; peak_memory: number; wall_time: number } | null;
  has_security_violations: boolean;
  created_at: string;
}

/** A newest-first list with an "Older" button that follows next_cursor. */
function pagedList<T>(opts: {
  path: string;
  key: string;
  body: string;
  empty: string;
  more: string;
  row: (item: T) => HTMLTableRowElement;
}): { load(): Promise<T[]> } {
  let cursor: string | null = null;
  const more = byId(opts.more);
  const fetchPage = async (append: boolean) => {
    const sep = opts.path.includes('?') ? '&' : '?';
    const url = append && cursor ? `${opts.path}${sep}cursor=${encodeURIComponent(cursor)}` : opts.path;
    const page = await api<Record<string, unknown>>(url);
    const items = page[opts.key] as T[];
    cursor = page.next_cursor as string | null;
    const rows = items.map(opts.row);
    if (append) byId(opts.body).append(...rows);
    else byId(opts.body).replaceChildren(...rows);
    byId(opts.empty).hidden = append || items.length > 0;
    more.hidden = cursor === null;
    return items;
  };
  more.addEventListener(
    'click',
    guarded(async () => void (await fetchPage(true))),
  );
  return { load: () => fetchPage(false) };
}

const executions = pagedList<ExecutionSummary>({
  path: '/executions?limit=20',
  key: 'executions',
  body: 'executions-body',
  empty: 'executions-empty',
  more: 'executions-more',
  row: (e) => {
    const link = el('a', { data: { requestId: e.request_id } }, shortId(e.request_id));
    link.href = `#executions`;
    link.addEventListener(
      'click',
      guarded(async () => awaitExecution(e.request_id, byId('execution-detail'))),
    );
    const u = e.resource_usage;
    return el(
      'tr',
      { data: { requestId: e.request_id } },
      el('td', {}, link),
      el('td', {}, e.language),
      el('td', {}, badge(e.status)),
      el('td', {}, e.verdict ? badge(e.verdict) : '–', e.has_security_violations ? ' ⚠' : ''),
      el('td', {}, seconds(u?.cpu_time)),
      el('td', {}, bytes(u?.peak_memory)),
      el('td', {}, seconds(u?.wall_time)),
      el('td', {}, when(e.created_at)),
    );
  },
});

// --- Run code ----------------------------------------------------------------------------------

interface LanguageInfo {
  id: string;
  name: string;
  version: string;
}

let languagesLoaded = false;

async function loadLanguages(): Promise<void> {
  if (languagesLoaded) return;
  const { languages } = await api<{ languages: LanguageInfo[] }>('/languages');
  const options = (select: HTMLSelectElement) =>
    select.append(
      ...languages.map((l) => Object.assign(el('option', {}, `${l.name} ${l.version}`), { value: l.id })),
    );
  options(byId<HTMLSelectElement>('run-language'));
  options(byId<HTMLSelectElement>('upload-language'));
  languagesLoaded = true;
}

function numberField(id: string): number | undefined {
  const value = byId<HTMLInputElement>(id).value.trim();
  return value === '' ? undefined : Number(value);
}

async function runCode(): Promise<void> {
  const box = byId('run-result');
  const submit = byId<HTMLButtonElement>('run-submit');
  const limits = {
    timeout: numberField('run-timeout'),
    memory_limit: numberField('run-memory'),
    cpu_limit: numberField('run-cpu'),
  };
  const stdin = byId<HTMLTextAreaElement>('run-stdin').value;
  const body = {
    language: byId<HTMLSelectElement>('run-language').value,
    code: byId<HTMLTextAreaElement>('run-code').value,
    ...(stdin ? { stdin } : {}),
    ...(Object.values(limits).some((v) => v !== undefined) ? { limits } : {}),
  };
  submit.disabled = true;
  claimBox(box);
  box.replaceChildren(el('p', {}, 'Running…'));
  box.hidden = false;
  try {
    const answer = await postJson<ExecutionResponse | { request_id: string; status: string }>(
      '/execute',
      body,
    );
    notify(null);
    if ('resource_usage' in answer) renderResult(box, answer);
    else await awaitExecution(answer.request_id, box);
  } catch (err) {
    box.hidden = true;
    throw err;
  } finally {
    submit.disabled = false;
  }
}

// --- Task files --------------------------------------------------------------------------------

interface TaskFile {
  validation_id: string;
  title: string;
  file_name: string;
  language: string;
  status: string;
  reasons: string[];
  created_at: string;
}

const UNFINISHED_VALIDATION = ['PENDING', 'VALIDATING'];

const taskFiles = pagedList<TaskFile>({
  path: '/tasks/files?limit=20',
  key: 'task_files',
  body: 'tasks-body',
  empty: 'tasks-empty',
  more: 'tasks-more',
  row: (f) =>
    el(
      'tr',
      { data: { validationId: f.validation_id, status: f.status } },
      el('td', {}, f.title),
      el('td', {}, f.file_name),
      el('td', {}, f.language),
      el('td', {}, badge(f.status)),
      el('td', {}, f.reasons.length > 0 ? el('ul', {}, ...f.reasons.map((r) => el('li', {}, r))) : '–'),
      el('td', {}, when(f.created_at)),
    ),
});

let watchingTasks = false;
let reloadTasks = false;

/**
 * Refreshes the list while an upload on it awaits its verdict and the page is open. One loop at
 * most; a call during it asks that loop for one more round, so a new upload is never missed.
 */
async function watchTaskFiles(): Promise<void> {
  reloadTasks = true;
  if (watchingTasks) return;
  watchingTasks = true;
  try {
    while (reloadTasks) {
      reloadTasks = false;
      const files = await taskFiles.load();
      if (current === 'tasks' && files.some((f) => UNFINISHED_VALIDATION.includes(f.status))) {
        reloadTasks = true;
        await pause(POLL_MS);
      }
    }
  } finally {
    watchingTasks = false;
  }
}

async function uploadTaskFile(): Promise<void> {
  const file = byId<HTMLInputElement>('upload-file').files?.[0];
  if (!file) throw new Error('choose a file first');
  const form = new FormData();
  const language = byId<HTMLSelectElement>('upload-language').value;
  const samples = byId<HTMLTextAreaElement>('upload-samples').value.trim();
  if (language) form.append('language', language);
  if (samples) form.append('sample_payloads', samples);
  form.append('file', file, file.name);
  await api('/tasks/upload_file', { method: 'POST', body: form });
  notify(null);
  byId<HTMLFormElement>('upload-form').reset();
  await watchTaskFiles();
}

interface TaskState {
  status: string;
  result: unknown;
  error: string | null;
  logs: string | null;
  usage: { cpu_time: number; peak_memory: number; wall_time: number } | null;
}

const FINISHED_TASK = ['succeeded', 'failed', 'error'];

/** POST /tasks, then its state until it has finished. The result is shown as JSON text. */
async function runTask(): Promise<void> {
  const box = byId('task-result');
  let payload: unknown;
  try {
    payload = JSON.parse(byId<HTMLTextAreaElement>('task-payload').value || '{}');
  } catch (err) {
    throw new Error(`the payload is not JSON: ${(err as Error).message}`);
  }
  const claim = claimBox(box);
  const created = await postJson<{ task_id: string }>('/tasks', {
    title: byId<HTMLInputElement>('task-title').value.trim(),
    payload,
  });
  notify(null);
  for (;;) {
    const task = await api<TaskState>(`/tasks/${encodeURIComponent(created.task_id)}`);
    if (!claim.current()) return;
    const parts: HTMLElement[] = [el('h3', {}, 'Task ', badge(task.status))];
    if (FINISHED_TASK.includes(task.status)) {
      const dl = el('dl');
      facts(dl, [
        ['CPU', seconds(task.usage?.cpu_time)],
        ['Peak memory', bytes(task.usage?.peak_memory)],
        ['Wall', seconds(task.usage?.wall_time)],
      ]);
      parts.push(
        dl,
        el('h4', {}, 'Result'),
        el('pre', { className: 'stdout' }, JSON.stringify(task.result, null, 2)),
      );
      if (task.error) parts.push(el('h4', {}, 'Error'), el('pre', { className: 'stderr' }, task.error));
      if (task.logs) parts.push(el('h4', {}, 'Printed'), el('pre', {}, task.logs));
    }
    box.replaceChildren(...parts);
    box.hidden = false;
    if (FINISHED_TASK.includes(task.status)) return;
    await pause(POLL_MS);
  }
}

// --- Jobs --------------------------------------------------------------------------------------

interface JobSummary {
  id: string;
  status: string;
  command: string;
  exit_code: number | null;
  created_at: string;
}

interface JobDetail extends JobSummary {
  verdict: string | null;
  error: string | null;
  usage: { cpu_time: number; peak_memory: number; wall_time: number } | null;
}

interface LogEvent {
  stream: 'stdout' | 'stderr' | 'system';
  line: string;
}

let openJob: AbortController | undefined;
/** The job whose detail is open: its log stream starts again when the page is shown again. */
let shownJob: string | undefined;

const jobs = pagedList<JobSummary>({
  path: '/jobs?limit=20',
  key: 'jobs',
  body: 'jobs-body',
  empty: 'jobs-empty',
  more: 'jobs-more',
  row: (j) => {
    const link = el('a', { data: { jobId: j.id } }, shortId(j.id));
    link.href = '#jobs';
    link.addEventListener(
      'click',
      guarded(() => showJob(j.id)),
    );
    return el(
      'tr',
      { data: { jobId: j.id } },
      el('td', {}, link),
      el('td', {}, el('code', {}, j.command)),
      el('td', {}, badge(j.status)),
      el('td', {}, j.exit_code === null ? '–' : String(j.exit_code)),
      el('td', {}, when(j.created_at)),
    );
  },
});

/** Base64 of UTF-8 text, as POST /jobs wants file contents. */
function base64(text: string): string {
  let binary = '';
  for (const b of new TextEncoder().encode(text)) binary += String.fromCharCode(b);
  return btoa(binary);
}

async function startJob(): Promise<void> {
  const name = byId<HTMLInputElement>('job-file-name').value.trim();
  const content = byId<HTMLTextAreaElement>('job-file-content').value;
  const timeout = numberField('job-timeout');
  const accepted = await postJson<{ id: string }>('/jobs', {
    command: byId<HTMLInputElement>('job-command').value,
    ...(timeout !== undefined ? { timeout } : {}),
    ...(name ? { files: [{ path: name, content: base64(content) }] } : {}),
  });
  notify(null);
  await jobs.load();
  await showJob(accepted.id);
}

/**
 * Server-Sent Events read with fetch rather than EventSource, which cannot send the Authorization
 * header. A dropped stream resumes after the last line seen (Last-Event-ID), as EventSource would.
 */
async function followLog(
  jobId: string,
  signal: AbortSignal,
  onLine: (event: LogEvent) => void,
): Promise<string> {
  let lastId: string | undefined;
  for (let attempt = 0; attempt < 20 && !signal.aborted; attempt++) {
    const res = await send(`/jobs/${encodeURIComponent(jobId)}/logs`, {
      signal,
      headers: { accept: 'text/event-stream', ...(lastId ? { 'last-event-id': lastId } : {}) },
    });
    if (!res.ok || !res.body) throw new ApiFailure(res.status, `${res.status}: the log is not available`);
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const fields: Record<string, string> = {};
        for (const line of block.split('\n')) {
          const colon = line.indexOf(':');
          if (colon <= 0) continue;
          fields[line.slice(0, colon)] = line.slice(colon + 1).replace(/^ /, '');
        }
        if (fields.event === 'end')
          return (JSON.parse(fields.data ?? '{}') as { status?: string }).status ?? '';
        if (fields.id) lastId = fields.id;
        if (fields.data) onLine(JSON.parse(fields.data) as LogEvent);
      }
    }
    await pause(1000); // the server's `retry:`; the stream closed without its end event
  }
  return '';
}

const UNFINISHED_JOB = ['queued', 'preparing', 'running', 'collecting'];

async function showJobFacts(jobId: string): Promise<void> {
  const job = await api<JobDetail>(`/jobs/${encodeURIComponent(jobId)}`);
  byId('job-status').replaceChildren(badge(job.status));
  byId('job-cancel').hidden = !UNFINISHED_JOB.includes(job.status);
  facts(byId('job-facts'), [
    ['Command', el('code', {}, job.command)],
    ['Exit code', job.exit_code === null ? '–' : String(job.exit_code)],
    ['Verdict', job.verdict ?? '–'],
    ['Error', job.error ?? '–'],
    ['CPU', seconds(job.usage?.cpu_time)],
    ['Peak memory', bytes(job.usage?.peak_memory)],
    ['Wall', seconds(job.usage?.wall_time)],
  ]);
}

/** DELETE /jobs/{id}: the log stream then ends with the job's final status. */
async function cancelJob(): Promise<void> {
  if (!shownJob) return;
  await api(`/jobs/${encodeURIComponent(shownJob)}`, { method: 'DELETE' });
  notify(null);
  await showJobFacts(shownJob);
}

async function showArtifacts(jobId: string): Promise<void> {
  const links = await api<{ path: string; size: number; url: string }[]>(
    `/jobs/${encodeURIComponent(jobId)}/artifacts`,
  );
  const items = links.map((a) => {
    const link = el('a', {}, a.path);
    // Only http(s) links: a URL is never allowed to become script.
    const url = new URL(a.url, location.href);
    if (url.protocol === 'http:' || url.protocol === 'https:') link.href = url.href;
    link.download = a.path.split('/').pop() ?? a.path;
    return el('li', {}, link, ` (${bytes(a.size)})`);
  });
  byId('job-artifacts').replaceChildren(
    ...(items.length > 0 ? items : [el('li', { className: 'muted' }, 'none')]),
  );
}

async function showJob(jobId: string): Promise<void> {
  openJob?.abort();
  const controller = new AbortController();
  openJob = controller;
  shownJob = jobId;
  byId('job-detail').hidden = false;
  byId('job-id').textContent = jobId;
  byId('job-artifacts').replaceChildren();
  const log = byId('job-log');
  log.replaceChildren();
  await showJobFacts(jobId);
  try {
    const status = await followLog(jobId, controller.signal, (event) => {
      log.append(el('div', { className: `line ${event.stream}` }, event.line));
    });
    log.dataset.ended = status;
  } catch (err) {
    if (controller.signal.aborted) return;
    throw err;
  }
  if (controller.signal.aborted) return;
  await showJobFacts(jobId);
  await showArtifacts(jobId);
  await jobs.load();
}

// --- System ------------------------------------------------------------------------------------

interface Check {
  ok: boolean;
  detail: string;
}

interface Health extends Record<string, unknown> {
  status: string;
  checks: {
    queue: Check & { queues: Record<string, { waiting: number; active: number; delayed: number }> };
    workers: Check & {
      processes: {
        id: string;
        host: string;
        pid: number;
        roles: string[];
        backend: string;
        concurrency: number;
      }[];
    };
  } & Record<string, Check>;
  pool: Record<string, number>;
  active_sandboxes: number;
}

/** The samples worth a glance; the rest is for Prometheus. */
const SHOWN_METRICS = [
  'warden_queue_jobs',
  'warden_active_sandboxes',
  'warden_pool_idle_sandboxes',
  'warden_runs_total',
  'warden_executions_total',
  'warden_security_violations_total',
  'warden_task_validations_total',
  'warden_jobs_total',
];

function metricRows(text: string): HTMLTableRowElement[] {
  const rows: HTMLTableRowElement[] = [];
  for (const line of text.split('\n')) {
    const match = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!match || !SHOWN_METRICS.includes(match[1]!)) continue;
    const labels = (match[2] ?? '').slice(1, -1).replace(/"/g, '');
    rows.push(el('tr', {}, el('td', {}, match[1]!), el('td', {}, labels), el('td', {}, match[3]!)));
  }
  return rows;
}

async function loadSystem(): Promise<void> {
  const health = await api<Health>('/health', {}, [503]);
  if (authRequired(health)) showKeyBox('this server wants an API key');
  byId('health-status').replaceChildren(badge(health.status));
  byId('checks-body').replaceChildren(
    ...Object.entries(health.checks).map(([name, c]) =>
      el('tr', {}, el('td', {}, name), el('td', {}, badge(c.ok ? 'ok' : 'failing')), el('td', {}, c.detail)),
    ),
  );
  byId('queues-body').replaceChildren(
    ...Object.entries(health.checks.queue.queues ?? {}).map(([name, q]) =>
      el(
        'tr',
        { data: { queue: name } },
        el('td', {}, name),
        el('td', {}, String(q.waiting)),
        el('td', {}, String(q.active)),
        el('td', {}, String(q.delayed)),
      ),
    ),
  );
  byId('workers-body').replaceChildren(
    ...(health.checks.workers.processes ?? []).map((p) =>
      el(
        'tr',
        {},
        el('td', {}, `${p.host} pid ${p.pid}`),
        el('td', {}, p.roles.join(', ')),
        el('td', {}, `${p.backend}, concurrency ${p.concurrency}`),
      ),
    ),
  );
  facts(byId('pool-facts'), [
    ['Active sandboxes', String(health.active_sandboxes)],
    ...Object.entries(health.pool).map(([pool, n]): [string, Child] => [`Idle (${pool})`, String(n)]),
  ]);
  const res = await send('/metrics');
  byId('metrics-body').replaceChildren(...(res.ok ? metricRows(await res.text()) : []));
}

// --- Pages -------------------------------------------------------------------------------------

const PAGES: Record<string, () => Promise<unknown>> = {
  executions: () => executions.load(),
  run: loadLanguages,
  tasks: async () => {
    await loadLanguages();
    await watchTaskFiles();
  },
  jobs: async () => {
    await jobs.load();
    if (shownJob) await showJob(shownJob);
  },
  system: loadSystem,
};

let current = '';
let healthTimer: ReturnType<typeof setInterval> | undefined;

function route(): void {
  notify(null);
  const name = location.hash.slice(1);
  current = name in PAGES ? name : 'executions';
  for (const section of document.querySelectorAll<HTMLElement>('[data-page]'))
    section.hidden = section.dataset.page !== current;
  for (const link of document.querySelectorAll<HTMLAnchorElement>('[data-nav]')) {
    if (link.dataset.nav === current) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (current !== 'jobs') openJob?.abort();
  clearInterval(healthTimer);
  if (current === 'system') healthTimer = setInterval(guarded(loadSystem), HEALTH_REFRESH_MS);
  guarded(async () => void (await PAGES[current]!()))();
}

function onSubmit(id: string, action: () => Promise<void>): void {
  byId<HTMLFormElement>(id).addEventListener('submit', (event) => {
    event.preventDefault();
    guarded(action)();
  });
}

function start(): void {
  setUpKeyBox();
  onSubmit('run-form', runCode);
  onSubmit('upload-form', uploadTaskFile);
  onSubmit('job-form', startJob);
  onSubmit('task-form', runTask);
  byId('job-cancel').addEventListener('click', guarded(cancelJob));
  byId('executions-refresh').addEventListener(
    'click',
    guarded(async () => void (await executions.load())),
  );
  window.addEventListener('hashchange', route);
  // Whether keys are required is known before the first page asks for anything.
  guarded(async () => {
    const health = await api<Record<string, unknown>>('/health', {}, [503]);
    if (authRequired(health)) showKeyBox('this server wants an API key');
  })();
  route();
  document.body.dataset.ready = 'true';
}

start();
