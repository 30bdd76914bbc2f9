import { randomUUID } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Job } from 'bullmq';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { findLanguage } from '../languages/index.js';
import {
  installTaskFile,
  prewarmHarnesses,
  listStaged,
  promote,
  quarantine,
  recoverValidationFile,
  sha256,
  stagedPath,
  tenantTasksDir,
  unlinkIfPresent,
  validateTaskFile,
  validationReport,
  type ValidationDirs,
} from '../pipeline/index.js';
import type { ValidationMessage, ValidationQueue } from '../queue/validations.js';
import {
  activateVersion,
  claimValidation,
  finishValidation,
  getTaskFile,
  lockTitle,
  recordVerdict,
  staleValidations,
  uploadContent,
  uploadStates,
  type TaskFileRecord,
  type Verdict,
} from '../store/task-files.js';
import type { Database } from '../store/schema.js';
import { validationEvent } from '../audit/events.js';
import type { Role, WorkerContext } from './role.js';

/**
 * The validation worker (SPEC §6): takes an upload from the validation queue, validates it in a
 * sandbox, then promotes it into the tasks dir or quarantines it, and records the status.
 *
 * Crash safety rests on three rules:
 * - the verdict is written to the row before any file moves, so a successor never validates twice a
 *   file whose fate was decided, it only finishes the move (recoverValidationFile tells where the
 *   file got to);
 * - every write of a worker is fenced by the claim token it took, so a worker that lost its job to
 *   stalled-job recovery (it looked dead) cannot overwrite its successor's work;
 * - a row stays VALIDATING only while a job for it is alive: BullMQ hands the job of a dead worker to
 *   another one after the lock expires, and the recovery pass queues again what Redis lost. After
 *   `maxAttempts` takes the upload is closed as REJECTED, saying it was Warden's fault.
 */

/** The claim moved on to another worker: this one must stop without writing anything else. */
class LostClaimError extends Error {}

/** Staged uploads older than this with no unfinished validation are leftovers (a crash mid-upload). */
const ORPHAN_STAGED_MS = 10 * 60_000;

interface Decision {
  verdict: Verdict;
  reasons: string[];
  report?: unknown;
}

const wardenFault = (what: string) =>
  `Warden could not validate this file: ${what}. This is not a problem with the file: upload it again`;

/**
 * Staged uploads no worker will touch again: their validation is finished (decided here, or on a
 * worker of another node, which never sees this node's staging dir), or they have no record and are
 * old enough to be a crash between staging and recording. The node that stages (the API) runs this.
 */
export async function sweepStaging(db: Kysely<Database>, stagingDir: string, logger: Logger): Promise<void> {
  const staged = await listStaged(stagingDir);
  const states = await uploadStates(db, staged);
  for (const id of staged) {
    const state = states.get(id);
    if (state === 'PENDING' || state === 'VALIDATING') continue;
    const path = stagedPath(stagingDir, id);
    if (state === undefined) {
      const info = await stat(path).catch(() => null);
      if (!info || Date.now() - info.mtimeMs < ORPHAN_STAGED_MS) continue;
    }
    await unlinkIfPresent(path);
    logger.info(
      { validationId: id, state: state ?? 'no record' },
      'removed a staged file nobody will validate',
    );
  }
}

export function validationRole(ctx: WorkerContext, queue: ValidationQueue): Role {
  const { config, engine, store, audit, metrics, logger } = ctx;
  const db = store.db;
  const maxAttempts = config.tasks.maxAttempts;
  prewarmHarnesses(engine, config.sandbox.pool);
  const dirs: ValidationDirs = {
    stagingDir: config.tasks.stagingDir,
    tasksDir: config.tasks.dir,
    quarantineDir: config.tasks.quarantineDir,
  };

  /** The upload's bytes as recorded in the store, if they are there and intact. */
  async function storedBytes(upload: TaskFileRecord): Promise<Buffer | null> {
    const bytes = await uploadContent(db, upload.validationId);
    return bytes && sha256(bytes) === upload.sha256 ? bytes : null;
  }

  /** Uploads recorded before the store kept their bytes: the file in this node's staging dir. */
  async function stagedBytes(upload: TaskFileRecord): Promise<Buffer | null> {
    try {
      return await readFile(stagedPath(dirs.stagingDir, upload.validationId));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      return null;
    }
  }

  /**
   * Promotes the upload into its tenant's part of the tasks dir and makes it the title's version,
   * under the title's lock so that two promotions under one title (the tenant uploading twice)
   * happen one after the other.
   */
  async function promoteUpload(upload: TaskFileRecord, token: string): Promise<'promoted' | 'lost'> {
    return db.transaction().execute(async (trx) => {
      const title = await lockTitle(trx, upload.title, upload.owner);
      const tasksDir = tenantTasksDir(dirs.tasksDir, upload.owner);
      const hints = { fileName: upload.fileName, sha256: upload.sha256 };
      let where = await recoverValidationFile({ ...dirs, tasksDir }, upload.validationId, hints);
      // Replacing is safe: the title, hence every `<title>.<ext>` in the tenant's dir, is this tenant's.
      if (where === 'staging') {
        await promote(stagedPath(dirs.stagingDir, upload.validationId), tasksDir, upload.fileName, {
          overwrite: true,
        });
        where = 'promoted';
      } else if (where === 'missing') {
        // Staged on another node: this node's copy comes from the store.
        const bytes = await storedBytes(upload);
        if (bytes) {
          await installTaskFile(tasksDir, upload.fileName, upload.validationId, bytes);
          where = 'promoted';
        }
      }
      if (where !== 'promoted') return 'lost';
      await activateVersion(trx, upload);
      if (!(await finishValidation(trx, upload.validationId, token, 'VALIDATED'))) throw new LostClaimError();
      // The previous version under another extension goes; under the same name it was just replaced.
      const previous = title.active?.fileName;
      if (previous && previous !== upload.fileName) await unlinkIfPresent(join(tasksDir, previous));
      return 'promoted';
    });
  }

  /** Records the decision, then moves the file where it says. Safe to repeat after a crash. */
  async function settle(
    upload: TaskFileRecord,
    token: string,
    decision: Decision,
    log: Logger,
  ): Promise<void> {
    if (!(await recordVerdict(db, upload.validationId, token, decision))) throw new LostClaimError();
    let { verdict, reasons } = decision;
    if (verdict === 'VALIDATED') {
      const promoted = await promoteUpload(upload, token);
      if (promoted === 'promoted') {
        await queue.notices.notify('validation', upload.validationId, { kind: 'done' });
        log.info({ title: upload.title, file: upload.fileName }, 'task file validated');
        audit.record(validationEvent(upload, 'VALIDATED', []));
        return;
      }
      verdict = 'REJECTED';
      reasons = [wardenFault('the uploaded file was lost before it could be promoted')];
      if (!(await recordVerdict(db, upload.validationId, token, { verdict, reasons })))
        throw new LostClaimError();
    }
    // No hints: a rejected upload never claims a file in the tasks dir.
    const where = await recoverValidationFile(dirs, upload.validationId);
    const bytes = where === 'missing' ? await storedBytes(upload) : null;
    if (where === 'staging' || bytes) {
      await quarantine(
        bytes ? { bytes } : { stagingPath: stagedPath(dirs.stagingDir, upload.validationId) },
        dirs.quarantineDir,
        upload.validationId,
        reasons,
      );
    }
    if (!(await finishValidation(db, upload.validationId, token, 'REJECTED'))) throw new LostClaimError();
    await queue.notices.notify('validation', upload.validationId, { kind: 'done' });
    log.info({ title: upload.title, reasons }, 'task file rejected');
    audit.record(validationEvent(upload, 'REJECTED', reasons));
  }

  async function validateAndSettle(upload: TaskFileRecord, token: string, log: Logger): Promise<void> {
    if (upload.verdict) {
      log.warn({ verdict: upload.verdict }, 'finishing a validation a previous worker decided');
      return settle(upload, token, { verdict: upload.verdict, reasons: upload.reasons }, log);
    }
    if (upload.attempts > maxAttempts) {
      const reason = wardenFault(
        `it was interrupted ${maxAttempts} times (the worker stopped while validating it)`,
      );
      return settle(upload, token, { verdict: 'REJECTED', reasons: [reason] }, log);
    }
    const bytes = (await storedBytes(upload)) ?? (await stagedBytes(upload));
    if (!bytes) {
      const reason = wardenFault('the uploaded file was lost before it could be validated');
      return settle(upload, token, { verdict: 'REJECTED', reasons: [reason] }, log);
    }
    if (sha256(bytes) !== upload.sha256) {
      const reason = 'the uploaded file changed after it was uploaded; upload it again';
      return settle(upload, token, { verdict: 'REJECTED', reasons: [reason] }, log);
    }
    const language = findLanguage(upload.language);
    if (!language) throw new Error(`unknown language ${upload.language} recorded for the upload`);
    const outcome = await validateTaskFile(
      { engine, policy: config.analysis },
      { code: bytes.toString('utf8'), language, samplePayloads: upload.samplePayloads ?? undefined },
    );
    metrics.observeValidation(language.id, outcome.status, outcome.durationMs / 1000);
    await settle(
      upload,
      token,
      { verdict: outcome.status, reasons: outcome.reasons, report: validationReport(outcome) },
      log,
    );
  }

  return {
    name: 'validation',
    queue: queue.name,
    lockMs: config.tasks.jobLockMs,
    // Stalls are counted by the row's attempts, which close the upload when they run out.
    maxStalledCount: maxAttempts,
    graceMs: 30_000,
    async process(job: Job<ValidationMessage>): Promise<void> {
      const id = job.data.validation_id;
      const token = randomUUID();
      // Taken: its place among the waiting uploads is free (a retry holds none).
      queue.admission.release(id).catch((err: Error) => logger.warn({ err: err.message }, 'queue admission'));
      const upload = await claimValidation(db, id, token);
      if (!upload) return; // finished already, or withdrawn
      const log = logger.child({ validationId: id, attempt: upload.attempts });
      try {
        await validateAndSettle(upload, token, log);
      } catch (err) {
        if (err instanceof LostClaimError) {
          log.warn('another worker took this validation over; leaving it to them');
          return;
        }
        const attempts = job.opts.attempts ?? 1;
        if (job.attemptsMade + 1 < attempts && upload.attempts < maxAttempts) throw err;
        // A decided upload is never re-decided for Warden's failure: only its move failed, and moves
        // are retried (the recovery pass queues it again) until they succeed.
        if ((await getTaskFile(db, id))?.verdict) throw err;
        log.error({ err }, 'validation failed on its last attempt');
        const reason = wardenFault(`${(err as Error).message} (tried ${upload.attempts} times)`);
        try {
          await settle(upload, token, { verdict: 'REJECTED', reasons: [reason] }, log);
        } catch (settleErr) {
          if (!(settleErr instanceof LostClaimError)) throw settleErr;
        }
      }
    },
    async recover() {
      const before = new Date(Date.now() - Math.min(config.tasks.recoveryIntervalMs, 30_000)).toISOString();
      for (const upload of await staleValidations(db, before)) {
        const message: ValidationMessage = {
          validation_id: upload.validationId,
          staging_path: stagedPath(dirs.stagingDir, upload.validationId),
          original_filename: upload.originalName,
          user: upload.owner,
        };
        if (await queue.ensure(upload.validationId, message)) {
          logger.warn(
            { validationId: upload.validationId, status: upload.status },
            'queued again a validation whose job was lost',
          );
        }
      }
      await queue.releaseStale(Date.parse(before));
    },
  };
}
