/**
 * `warden/sdk`: a typed client of Warden's HTTP API. No dependencies beyond fetch; the types are
 * generated from the server's OpenAPI document (./openapi.ts, `npm run gen:sdk`).
 */
export {
  WardenClient,
  type CallOptions,
  type DownloadedArtifact,
  type StreamLogsOptions,
  type TaskFileUpload,
  type WaitOptions,
  type WardenClientOptions,
} from './client.js';
export { WardenConnectionError, WardenError, WardenTimeoutError } from './errors.js';
export type { RetryOptions } from './http.js';
export type { paths } from './openapi.js';
export type * from './types.js';
