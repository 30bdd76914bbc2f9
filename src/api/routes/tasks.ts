import { unlink } from 'node:fs/promises';
import fastifyMultipart from '@fastify/multipart';
import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { findLanguage, LANGUAGES } from '../../languages/index.js';
import {
  MAX_SAMPLE_BYTES,
  MAX_SAMPLE_PAYLOADS,
  safeTaskName,
  stageFile,
  UnsafeFileNameError,
} from '../../pipeline/index.js';
import type { ValidationMessage } from '../../queue/validations.js';
import { deleteUpload, getTaskFile, getTitle, insertUpload, latestUpload } from '../../store/task-files.js';
import { deleteTask, getTask, insertTask } from '../../store/tasks.js';
import type { Admission } from '../../queue/admission.js';
import { admitOrRefuse, holdingPlace } from '../admission.js';
import { acceptCallback } from '../callback.js';
import { requestActor } from '../../audit/events.js';
import type { AppDeps } from '../deps.js';
import { ApiError, storeGuard, UnavailableError } from '../errors.js';
import {
  errors,
  notValidatedBody,
  taskCreated,
  taskCreateRequest,
  taskIdParams,
  taskRecord,
  uploadAccepted,
  validationIdParams,
  validationReport,
  validationStatus,
} from '../schemas.js';
import { waitSignal } from '../submit.js';
import { requestTenant } from '../tenant.js';
import { taskView } from '../views.js';

const FINAL = new Set(['succeeded', 'failed', 'error']);

const DECIDED = new Set(['VALIDATED', 'REJECTED']);

const waitQuery = (until: string) =>
  z.strictObject({
    wait: z
      .enum(['true', 'false'])
      .default('false')
      .describe(`true: answer once ${until} (up to server.requestTimeoutMs) instead of at once.`),
  });

/**
 * Task files (SPEC §6): uploads go to the staging dir and the validation queue; validated files are
 * run as tasks through the task queue. This layer checks, records and enqueues; workers do the rest.
 */

const languageList = Object.values(LANGUAGES)
  .map((l) => l.id)
  .join(', ');

interface Upload {
  fileName: string;
  bytes: Buffer;
  language?: string;
  samplePayloads?: unknown[];
}

/** Multipart errors of @fastify/multipart and busboy, as answers naming the field. */
function multipartError(err: unknown, maxUploadBytes: number): unknown {
  switch ((err as { code?: string } | null)?.code) {
    case 'FST_REQ_FILE_TOO_LARGE':
      return new ApiError(
        413,
        'file_too_large',
        `the file is larger than the upload limit of ${maxUploadBytes} bytes`,
        'file',
      );
    case 'FST_FILES_LIMIT':
      return new ApiError(400, 'too_many_files', 'send exactly one file, in the field "file"', 'file');
    case 'FST_FIELDS_LIMIT':
    case 'FST_PARTS_LIMIT':
      return new ApiError(400, 'invalid_request', 'too many form fields', 'body');
    case 'FST_INVALID_MULTIPART_CONTENT_TYPE':
      return new ApiError(
        415,
        'unsupported_media_type',
        'send the upload as multipart/form-data',
        'content-type',
      );
    case 'FST_PROTO_VIOLATION':
      return new ApiError(400, 'invalid_request', 'invalid form field name', 'body');
    case 'FST_MP_PREMATURE_CLOSE':
      return new ApiError(400, 'invalid_body', 'the upload ended before it was complete', 'body');
    default:
      return err;
  }
}

function parseSamples(text: string): unknown[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ApiError(
      400,
      'invalid_request',
      `sample_payloads is not valid JSON: ${(err as Error).message}`,
      'sample_payloads',
    );
  }
  if (!Array.isArray(value)) {
    throw new ApiError(400, 'invalid_request', 'sample_payloads must be a JSON array', 'sample_payloads');
  }
  if (value.length > MAX_SAMPLE_PAYLOADS) {
    throw new ApiError(
      400,
      'invalid_request',
      `sample_payloads has ${value.length} payloads; at most ${MAX_SAMPLE_PAYLOADS} are allowed`,
      'sample_payloads',
    );
  }
  return value;
}

async function readUpload(req: FastifyRequest, maxUploadBytes: number): Promise<Upload> {
  if (!req.isMultipart()) {
    throw new ApiError(
      415,
      'unsupported_media_type',
      'send the upload as multipart/form-data, the file in the field "file"',
      'content-type',
    );
  }
  let file: { fileName: string; bytes: Buffer } | undefined;
  const fields = new Map<string, string>();
  try {
    for await (const part of req.parts({
      // Keep the name as sent: a path in it is refused, not silently cut to its last component.
      preservePath: true,
      limits: {
        fileSize: maxUploadBytes,
        files: 1,
        fields: 4,
        parts: 6,
        fieldSize: MAX_SAMPLE_BYTES + 1,
      },
    })) {
      if (part.type === 'file') {
        if (part.fieldname !== 'file') {
          throw new ApiError(400, 'invalid_request', `unexpected file field "${part.fieldname}"`, 'file');
        }
        file = { fileName: part.filename, bytes: await part.toBuffer() };
      } else {
        if (part.fieldname !== 'language' && part.fieldname !== 'sample_payloads') {
          throw new ApiError(
            400,
            'invalid_request',
            `unknown field ${JSON.stringify(part.fieldname)}`,
            part.fieldname,
          );
        }
        if (part.valueTruncated) {
          throw new ApiError(
            413,
            'field_too_large',
            `${part.fieldname} is larger than ${MAX_SAMPLE_BYTES} bytes`,
            part.fieldname,
          );
        }
        fields.set(part.fieldname, String(part.value));
      }
    }
  } catch (err) {
    throw multipartError(err, maxUploadBytes);
  }
  if (!file) throw new ApiError(400, 'invalid_request', 'the form has no file in the field "file"', 'file');
  const samples = fields.get('sample_payloads');
  return {
    ...file,
    language: fields.get('language') || undefined,
    samplePayloads: samples === undefined || samples === '' ? undefined : parseSamples(samples),
  };
}

function isUtf8(bytes: Buffer): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

export const taskRoutes =
  (deps: AppDeps): FastifyPluginAsyncZod =>
  async (app) => {
    const { config, store } = deps;
    const retryAfter = config.server.retryAfterSeconds;
    const { maxUploadBytes } = config.tasks;

    await app.register(fastifyMultipart, { throwFileSizeLimit: true });

    const stored = storeGuard(retryAfter);

    /**
     * `?wait=true`: `record` once `final` says so (its worker tells of the end, see
     * queue/finish-notices.ts; the store is asked again then), or as it is after server.requestTimeoutMs.
     */
    const waitUntilFinal = async <T>(
      kind: 'task' | 'validation',
      id: string,
      record: T,
      read: () => Promise<T | undefined>,
      final: (r: T) => boolean,
      signal: AbortSignal,
    ): Promise<T> => {
      if (final(record)) return record;
      const isDone = async () => {
        const now = await read();
        return now !== undefined && final(now);
      };
      await deps.queue.notices.wait(kind, id, config.server.requestTimeoutMs, isDone, signal);
      return (await read()) ?? record;
    };

    /** A place in `queue` for `id`, or 429 (shutting down: 503); see ../admission.ts. */
    const admit = async (queue: { admission: Admission }, id: string, user: string, what: string) => {
      if (deps.shutdown?.aborted)
        throw new UnavailableError('service', retryAfter, 'the service is shutting down');
      await admitOrRefuse(config, queue.admission, [id], user, what);
    };

    app.post(
      '/tasks/upload_file',
      {
        config: { scope: 'tasks' },
        schema: {
          summary: 'Upload a task file for validation',
          consumes: ['multipart/form-data'],
          description: `multipart/form-data with \`file\` (a .py, .js or .ts file of at most ${maxUploadBytes} bytes defining \`async def handler(payload)\` or \`export async function handler(payload)\`), optional \`language\` (must agree with the extension) and optional \`sample_payloads\` (a JSON array of up to ${MAX_SAMPLE_PAYLOADS} payloads the handler must return JSON for). The file name (without its extension) becomes the title POST /tasks runs it by; titles are per tenant: uploading a title again replaces it. Answers 202 at once: poll \`poll\` for the verdict.`,
          response: {
            202: uploadAccepted,
            ...errors(400, 413, 415, 429, 503),
          },
        },
      },
      async (req, reply) => {
        const user = requestTenant(req);
        const upload = await readUpload(req, maxUploadBytes);
        let declared;
        if (upload.language !== undefined) {
          declared = findLanguage(upload.language);
          if (!declared) {
            throw new ApiError(
              400,
              'unknown_language',
              `unknown language ${JSON.stringify(upload.language)}; supported: ${languageList}`,
              'language',
            );
          }
        }
        let name;
        try {
          name = safeTaskName(upload.fileName);
        } catch (err) {
          if (err instanceof UnsafeFileNameError)
            throw new ApiError(400, 'unsafe_file_name', err.message, 'file');
          throw err;
        }
        if (declared && declared.id !== name.language.id) {
          throw new ApiError(
            400,
            'language_mismatch',
            `the file ${name.fileName} is ${name.language.id}, not ${declared.id}`,
            'language',
          );
        }
        if (upload.bytes.length === 0) throw new ApiError(400, 'empty_file', 'the file is empty', 'file');
        if (!isUtf8(upload.bytes))
          throw new ApiError(400, 'invalid_file', 'the file is not UTF-8 text', 'file');
        const validationId = req.id;
        await admit(deps.validations, validationId, user, 'uploads');
        const staged = await holdingPlace(deps.validations.admission, validationId, async () => {
          const staged = await stageFile(config.tasks.stagingDir, validationId, upload.bytes);
          const unstage = () => unlink(staged.path).catch(() => {});
          try {
            await stored(
              () =>
                insertUpload(store.db, {
                  validationId,
                  title: name.title,
                  fileName: name.fileName,
                  originalName: upload.fileName,
                  language: name.language.id,
                  owner: user,
                  sha256: staged.sha256,
                  sizeBytes: staged.size,
                  content: upload.bytes,
                  samplePayloads: upload.samplePayloads,
                }),
              req.log,
            );
          } catch (err) {
            await unstage();
            throw err;
          }
          const message: ValidationMessage = {
            validation_id: validationId,
            staging_path: staged.path,
            original_filename: upload.fileName,
            user,
          };
          try {
            await deps.validations.enqueue(validationId, message);
          } catch (err) {
            // Refused with 503: the upload never existed.
            await deleteUpload(store.db, validationId).catch(() => {});
            await unstage();
            throw err;
          }
          return staged;
        });
        req.log.info({ validationId, title: name.title, user, bytes: staged.size }, 'task file uploaded');
        deps.audit.record({
          tenant: user,
          actor: requestActor(req),
          action: 'task_file.uploaded',
          target: validationId,
          outcome: 'PENDING',
          details: {
            title: name.title,
            file_name: name.fileName,
            language: name.language.id,
            sha256: staged.sha256,
            size: staged.size,
          },
        });
        const poll = `/tasks/validation_status/${validationId}`;
        return reply
          .code(202)
          .header('location', poll)
          .send({
            validation_id: validationId,
            status: 'PENDING' as const,
            title: name.title,
            file_name: name.fileName,
            language: name.language.id,
            poll,
          });
      },
    );

    app.get(
      '/tasks/validation_status/:validation_id',
      {
        config: { scope: 'tasks' },
        schema: {
          summary: 'Verdict of an uploaded task file',
          description:
            'With `wait=true`, answers once the file is VALIDATED or REJECTED (or after server.requestTimeoutMs, with its status then) instead of at once: the verdict without polling.',
          params: validationIdParams,
          querystring: waitQuery('the file is VALIDATED or REJECTED'),
          response: { 200: validationStatus, ...errors(400, 404, 503) },
        },
      },
      async (req, reply) => {
        const user = requestTenant(req);
        const id = req.params.validation_id;
        const read = () => stored(() => getTaskFile(store.db, id), req.log);
        let upload = await read();
        if (!upload || upload.owner !== user) {
          throw new ApiError(404, 'not_found', `no validation ${JSON.stringify(id)}`, 'validation_id');
        }
        if (req.query.wait === 'true')
          upload = await waitUntilFinal(
            'validation',
            id,
            upload,
            read,
            (u) => DECIDED.has(u.status),
            waitSignal(deps, reply),
          );
        const final = DECIDED.has(upload.status);
        return {
          validation_id: upload.validationId,
          status: upload.status,
          reasons: final ? upload.reasons : [],
          checked_at: upload.checkedAt,
          title: upload.title,
          file_name: upload.fileName,
          original_filename: upload.originalName,
          language: upload.language,
          created_at: upload.createdAt,
          report: final && upload.report !== null ? validationReport.parse(upload.report) : null,
        };
      },
    );

    app.post(
      '/tasks',
      {
        config: { scope: 'tasks' },
        schema: {
          summary: 'Run the handler of a validated task file with a payload',
          description:
            'Answers 201 with the task_id at once; the handler runs in a sandbox on a task worker: poll `poll` for its result. 404 for a title you have not uploaded; 412 while its file is not validated (the body says its status).',
          body: taskCreateRequest,
          response: {
            201: taskCreated,
            412: notValidatedBody.describe('No validated version of this title (yet).'),
            ...errors(400, 404, 413, 415, 429, 503),
          },
        },
      },
      async (req, reply) => {
        const user = requestTenant(req);
        const { title, payload } = req.body;
        const callback = await acceptCallback(deps, req, req.body.callback_url);
        const unknown = () =>
          new ApiError(
            404,
            'unknown_title',
            `no task file titled ${JSON.stringify(title)}; upload one with POST /tasks/upload_file`,
            'title',
          );
        const record = await stored(() => getTitle(store.db, user, title), req.log);
        if (!record) throw unknown();
        if (!record.active) {
          const latest = await stored(() => latestUpload(store.db, title, user), req.log);
          if (!latest) throw unknown();
          const why =
            latest.status === 'REJECTED'
              ? 'was rejected (see its validation status for the reasons)'
              : `is ${latest.status} (not validated yet; retry when it is VALIDATED)`;
          throw new ApiError(
            412,
            'task_file_not_validated',
            `the task file ${JSON.stringify(title)} ${why}`,
            'title',
            undefined,
            { title, status: latest.status, validation_id: latest.validationId },
          );
        }
        const taskId = req.id;
        await admit(deps.tasks, taskId, user, 'tasks');
        await holdingPlace(deps.tasks.admission, taskId, async () => {
          await stored(() => insertTask(store.db, { taskId, title, owner: user, payload }), req.log);
          try {
            await callback?.save('task', taskId);
            await deps.tasks.enqueue(taskId, { task_id: taskId, title, user });
          } catch (err) {
            await deleteTask(store.db, taskId).catch(() => {});
            throw err;
          }
        });
        const poll = `/tasks/${taskId}`;
        return reply
          .code(201)
          .header('location', poll)
          .send({ task_id: taskId, status: 'queued' as const, title, poll });
      },
    );

    app.get(
      '/tasks/:task_id',
      {
        config: { scope: 'tasks' },
        schema: {
          summary: 'State of a task, with its result once finished',
          description:
            'With `wait=true`, answers once the task has finished (or after server.requestTimeoutMs, with its state then) instead of at once: the result without polling.',
          params: taskIdParams,
          querystring: waitQuery('the task has finished'),
          response: { 200: taskRecord, ...errors(400, 404, 503) },
        },
      },
      async (req, reply) => {
        const user = requestTenant(req);
        const id = req.params.task_id;
        const read = () => stored(() => getTask(store.db, id), req.log);
        let task = await read();
        if (!task || task.owner !== user) {
          throw new ApiError(404, 'not_found', `no task ${JSON.stringify(id)}`, 'task_id');
        }
        if (req.query.wait === 'true')
          task = await waitUntilFinal(
            'task',
            id,
            task,
            read,
            (t) => FINAL.has(t.status),
            waitSignal(deps, reply),
          );
        return taskView(task);
      },
    );
  };
