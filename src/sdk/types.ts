import type { paths } from './openapi.js';

/**
 * Request and response types of the SDK, read out of the generated OpenAPI types (./openapi.ts), so
 * a change to a route's zod schema reaches the SDK by `npm run gen:sdk`, never by hand.
 */

type Method = 'get' | 'post' | 'put' | 'delete' | 'patch';
type Operation<P extends keyof paths, M extends Method> = NonNullable<paths[P][M]>;
type JsonOf<T> = T extends { content: { 'application/json': infer B } } ? B : never;

/** The JSON body an operation takes. */
export type RequestBody<P extends keyof paths, M extends Method> =
  Operation<P, M> extends { requestBody?: infer R } ? JsonOf<NonNullable<R>> : never;

/** The JSON body of one of an operation's answers. */
export type ResponseBody<P extends keyof paths, M extends Method, S extends number> =
  Operation<P, M> extends { responses: infer R } ? (S extends keyof R ? JsonOf<R[S]> : never) : never;

/** The query parameters an operation takes. */
export type QueryOf<P extends keyof paths, M extends Method> =
  Operation<P, M> extends { parameters: { query?: infer Q } } ? NonNullable<Q> : never;

export type ServiceInfo = ResponseBody<'/', 'get', 200>;
export type Health = ResponseBody<'/health', 'get', 200>;

export type ExecuteRequest = RequestBody<'/execute', 'post'>;
export type ExecuteResult = ResponseBody<'/execute', 'post', 200>;
export type ExecutionAccepted = ResponseBody<'/execute', 'post', 202>;
export type Execution = ResponseBody<'/executions/{request_id}', 'get', 200>;
export type ExecutionList = ResponseBody<'/executions', 'get', 200>;
/** `limit` and the `cursor` a previous page gave as `next_cursor`. */
export type PageQuery = QueryOf<'/executions', 'get'>;

export type ValidateRequest = RequestBody<'/validate', 'post'>;
export type ValidateResult = ResponseBody<'/validate', 'post', 200>;
export type Language = ResponseBody<'/languages', 'get', 200>['languages'][number];
export type RuleCatalogue = ResponseBody<'/languages/{language}/validate', 'get', 200>;

export type UploadAccepted = ResponseBody<'/tasks/upload_file', 'post', 202>;
export type ValidationStatus = ResponseBody<'/tasks/validation_status/{validation_id}', 'get', 200>;
export type TaskCreated = ResponseBody<'/tasks', 'post', 201>;
export type Task = ResponseBody<'/tasks/{task_id}', 'get', 200>;
export type TaskFileList = ResponseBody<'/tasks/files', 'get', 200>;

export type JobRequest = RequestBody<'/jobs', 'post'>;
export type JobAccepted = ResponseBody<'/jobs', 'post', 202>;
export type Job = ResponseBody<'/jobs/{id}', 'get', 200>;
export type JobList = ResponseBody<'/jobs', 'get', 200>;
export type JobListQuery = QueryOf<'/jobs', 'get'>;
export type JobCancelled = ResponseBody<'/jobs/{id}', 'delete', 200>;
export type ArtifactLink = ResponseBody<'/jobs/{id}/artifacts', 'get', 200>[number];

export type BatchRequest = RequestBody<'/execute/batch', 'post'>;
export type BatchAnswer = ResponseBody<'/execute/batch', 'post', 200 | 202>;

export type WebhookSecret = ResponseBody<'/webhooks/secret', 'get', 200>;
export type WebhookDeliveries = ResponseBody<'/webhooks/deliveries', 'get', 200>;
export type WebhookDeliveriesQuery = QueryOf<'/webhooks/deliveries', 'get'>;

export type ApiKeyRequest = RequestBody<'/admin/keys', 'post'>;
export type ApiKeyCreated = ResponseBody<'/admin/keys', 'post', 201>;
export type ApiKeyList = ResponseBody<'/admin/keys', 'get', 200>;
export type ApiKeyListQuery = QueryOf<'/admin/keys', 'get'>;
export type ApiKeyRevoked = ResponseBody<'/admin/keys/{id}', 'delete', 200>;
export type AuditPage = ResponseBody<'/audit', 'get', 200>;
export type AuditQuery = QueryOf<'/audit', 'get'>;

/** The error body every non-2xx answer of Warden carries. */
export type ErrorBody = ResponseBody<'/validate', 'post', 400>;

/** One event of a job's log stream (GET /jobs/{id}/logs, Server-Sent Events). */
export type LogEvent =
  | {
      type: 'line';
      /** The line's sequence number: pass it as `lastEventId` to resume after it. */
      id: number;
      stream: 'stdout' | 'stderr' | 'system';
      line: string;
      time: string;
    }
  | {
      /** The last event: the job has finished with this status. */
      type: 'end';
      status: Job['status'] | 'gone';
    };
