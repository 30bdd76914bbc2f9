import type { Kysely, Selectable, Transaction } from 'kysely';
import { iso, json, now } from './codec.js';
import type { Database, TaskFilesTable, TaskTitlesTable, ValidationState } from './schema.js';

/**
 * Uploaded task files and their validations (SPEC §6), and the titles they claim. The owner is the
 * tenant; a title is unique within its tenant, across languages (`foo.py` and `foo.js` are both
 * `foo`), and two tenants' titles never meet: neither can learn that the other has one.
 */

type Db = Kysely<Database> | Transaction<Database>;

export type Verdict = 'VALIDATED' | 'REJECTED';

export interface TaskFileRecord {
  validationId: string;
  title: string;
  fileName: string;
  originalName: string;
  language: string;
  owner: string;
  sha256: string;
  sizeBytes: number;
  samplePayloads: unknown[] | null;
  status: ValidationState;
  verdict: Verdict | null;
  reasons: string[];
  /** What the validation found (warnings, findings, probes, usage); its shape is the worker's. */
  report: unknown;
  attempts: number;
  claim: string | null;
  createdAt: string;
  updatedAt: string;
  startedAt: string | null;
  checkedAt: string | null;
}

export interface TitleRecord {
  title: string;
  owner: string;
  /** The version tasks run, once one is validated. */
  active: { validationId: string; fileName: string; language: string; sha256: string } | null;
}

export const UNFINISHED: ValidationState[] = ['PENDING', 'VALIDATING'];

/** Every column but the bytes, which only a worker about to run them reads (uploadContent). */
const RECORD_COLUMNS = [
  'validation_id',
  'title',
  'file_name',
  'original_name',
  'language',
  'owner',
  'sha256',
  'size_bytes',
  'sample_payloads',
  'status',
  'verdict',
  'reasons',
  'report',
  'attempts',
  'claim',
  'created_at',
  'updated_at',
  'started_at',
  'checked_at',
] as const;

function toRecord(row: Omit<Selectable<TaskFilesTable>, 'content'>): TaskFileRecord {
  return {
    validationId: row.validation_id,
    title: row.title,
    fileName: row.file_name,
    originalName: row.original_name,
    language: row.language,
    owner: row.owner,
    sha256: row.sha256,
    sizeBytes: Number(row.size_bytes),
    samplePayloads: row.sample_payloads === null ? null : (json(row.sample_payloads) as unknown[]),
    status: row.status,
    verdict: row.verdict,
    reasons: json(row.reasons) as string[],
    report: row.report === null ? null : json(row.report),
    attempts: Number(row.attempts),
    claim: row.claim,
    createdAt: iso(row.created_at) ?? '',
    updatedAt: iso(row.updated_at) ?? '',
    startedAt: iso(row.started_at),
    checkedAt: iso(row.checked_at),
  };
}

function toTitle(row: Selectable<TaskTitlesTable>): TitleRecord {
  const { validation_id: id, file_name: fileName, language, sha256 } = row;
  return {
    title: row.title,
    owner: row.owner,
    active:
      id !== null && fileName !== null && language !== null && sha256 !== null
        ? { validationId: id, fileName, language, sha256 }
        : null,
  };
}

export interface NewUpload {
  validationId: string;
  title: string;
  fileName: string;
  originalName: string;
  language: string;
  owner: string;
  sha256: string;
  sizeBytes: number;
  /** The file itself, kept in the row for workers on other nodes. */
  content: Buffer;
  samplePayloads?: unknown[];
}

/** Claims the title within the owner's tenant (or finds it there) and records the upload as PENDING. */
export async function insertUpload(db: Kysely<Database>, upload: NewUpload): Promise<void> {
  const at = now();
  await db.transaction().execute(async (trx) => {
    // A write first: on SQLite it takes the write lock at once instead of upgrading a read lock later.
    await trx
      .insertInto('task_titles')
      .values({
        title: upload.title,
        owner: upload.owner,
        validation_id: null,
        file_name: null,
        language: null,
        sha256: null,
        updated_at: at,
      })
      .onConflict((oc) => oc.columns(['owner', 'title']).doNothing())
      .execute();
    await trx
      .insertInto('task_files')
      .values({
        validation_id: upload.validationId,
        title: upload.title,
        file_name: upload.fileName,
        original_name: upload.originalName,
        language: upload.language,
        owner: upload.owner,
        sha256: upload.sha256,
        size_bytes: upload.sizeBytes,
        content: upload.content,
        sample_payloads: upload.samplePayloads ? JSON.stringify(upload.samplePayloads) : null,
        status: 'PENDING',
        verdict: null,
        reasons: '[]',
        report: null,
        attempts: 0,
        claim: null,
        created_at: at,
        updated_at: at,
        started_at: null,
        checked_at: null,
      })
      .execute();
  });
}

/** The uploaded bytes; null for an upload recorded before they were kept in the store. */
export async function uploadContent(db: Db, validationId: string): Promise<Buffer | null> {
  const row = await db
    .selectFrom('task_files')
    .select('content')
    .where('validation_id', '=', validationId)
    .executeTakeFirst();
  return row?.content ?? null;
}

/** For an upload refused after its row was written (the queue was down): it never existed. */
export async function deleteUpload(db: Kysely<Database>, validationId: string): Promise<void> {
  await db.deleteFrom('task_files').where('validation_id', '=', validationId).execute();
}

export async function getTaskFile(db: Db, validationId: string): Promise<TaskFileRecord | undefined> {
  const row = await db
    .selectFrom('task_files')
    .select(RECORD_COLUMNS)
    .where('validation_id', '=', validationId)
    .executeTakeFirst();
  return row ? toRecord(row) : undefined;
}

/**
 * A worker takes the validation: VALIDATING, one more attempt, and `token` as the only claim whose
 * writes count from now on. Undefined when it is already finished or another worker took it since.
 */
export async function claimValidation(
  db: Kysely<Database>,
  validationId: string,
  token: string,
): Promise<TaskFileRecord | undefined> {
  const at = now();
  await db
    .updateTable('task_files')
    .set((eb) => ({
      status: 'VALIDATING',
      claim: token,
      attempts: eb('attempts', '+', 1),
      started_at: at,
      updated_at: at,
    }))
    .where('validation_id', '=', validationId)
    .where('status', 'in', UNFINISHED)
    .execute();
  const record = await getTaskFile(db, validationId);
  return record?.claim === token && record.status === 'VALIDATING' ? record : undefined;
}

/** The decision, before any file moves. False when `token` no longer holds the validation. */
export async function recordVerdict(
  db: Db,
  validationId: string,
  token: string,
  outcome: { verdict: Verdict; reasons: string[]; report?: unknown },
): Promise<boolean> {
  const res = await db
    .updateTable('task_files')
    .set({
      verdict: outcome.verdict,
      reasons: JSON.stringify(outcome.reasons),
      updated_at: now(),
      ...(outcome.report === undefined ? {} : { report: JSON.stringify(outcome.report) }),
    })
    .where('validation_id', '=', validationId)
    .where('claim', '=', token)
    .where('status', '=', 'VALIDATING')
    .executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}

/** The file is where the verdict says: the status becomes the verdict. False for a stale `token`. */
export async function finishValidation(
  db: Db,
  validationId: string,
  token: string,
  status: Verdict,
): Promise<boolean> {
  const at = now();
  const res = await db
    .updateTable('task_files')
    .set({ status, claim: null, checked_at: at, updated_at: at })
    .where('validation_id', '=', validationId)
    .where('claim', '=', token)
    .where('status', '=', 'VALIDATING')
    .where('verdict', '=', status)
    .executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}

/** The owner's title (another tenant's title of the same name is not there). */
export async function getTitle(db: Db, owner: string, title: string): Promise<TitleRecord | undefined> {
  const row = await db
    .selectFrom('task_titles')
    .selectAll()
    .where('owner', '=', owner)
    .where('title', '=', title)
    .executeTakeFirst();
  return row ? toTitle(row) : undefined;
}

/**
 * Locks the title's row until the transaction ends (PostgreSQL: that row; SQLite: the database), so
 * promotions under one title happen one at a time. Recreates the row if it is missing.
 */
export async function lockTitle(
  trx: Transaction<Database>,
  title: string,
  owner: string,
): Promise<TitleRecord> {
  const at = now();
  await trx
    .insertInto('task_titles')
    .values({
      title,
      owner,
      validation_id: null,
      file_name: null,
      language: null,
      sha256: null,
      updated_at: at,
    })
    .onConflict((oc) => oc.columns(['owner', 'title']).doNothing())
    .execute();
  await trx
    .updateTable('task_titles')
    .set({ updated_at: at })
    .where('owner', '=', owner)
    .where('title', '=', title)
    .execute();
  const record = await getTitle(trx, owner, title);
  if (!record) throw new Error(`task title ${title} vanished while locked`);
  return record;
}

/** The version tasks under this title run from now on. */
export async function activateVersion(
  trx: Transaction<Database>,
  upload: Pick<TaskFileRecord, 'title' | 'owner' | 'validationId' | 'fileName' | 'language' | 'sha256'>,
): Promise<void> {
  await trx
    .updateTable('task_titles')
    .set({
      validation_id: upload.validationId,
      file_name: upload.fileName,
      language: upload.language,
      sha256: upload.sha256,
      updated_at: now(),
    })
    .where('title', '=', upload.title)
    .where('owner', '=', upload.owner)
    .execute();
}

/** The owner's most recent upload under a title (what POST /tasks reports when none is validated). */
export async function latestUpload(
  db: Db,
  title: string,
  owner: string,
): Promise<TaskFileRecord | undefined> {
  const row = await db
    .selectFrom('task_files')
    .select(RECORD_COLUMNS)
    .where('title', '=', title)
    .where('owner', '=', owner)
    .orderBy('created_at', 'desc')
    .limit(1)
    .executeTakeFirst();
  return row ? toRecord(row) : undefined;
}

/**
 * The upload under `title` with these exact bytes that validation accepted, if any: a task worker
 * runs a file only when it finds one, whatever a concurrent promotion is doing to the tasks dir.
 */
export async function validatedVersion(
  db: Db,
  owner: string,
  title: string,
  fileName: string,
  sha256: string,
): Promise<string | undefined> {
  const row = await db
    .selectFrom('task_files')
    .select('validation_id')
    .where('owner', '=', owner)
    .where('title', '=', title)
    .where('file_name', '=', fileName)
    .where('sha256', '=', sha256)
    .where('verdict', '=', 'VALIDATED')
    .limit(1)
    .executeTakeFirst();
  return row?.validation_id;
}

/** Validations nobody has touched since `before` that are not finished (recovery looks at these). */
export async function staleValidations(db: Db, before: string, limit = 500): Promise<TaskFileRecord[]> {
  const rows = await db
    .selectFrom('task_files')
    .select(RECORD_COLUMNS)
    .where('status', 'in', UNFINISHED)
    .where('updated_at', '<', before)
    .orderBy('updated_at')
    .limit(limit)
    .execute();
  return rows.map(toRecord);
}

/** Status of each of these validation ids that has a row. */
export async function uploadStates(db: Db, ids: string[]): Promise<Map<string, ValidationState>> {
  if (ids.length === 0) return new Map();
  const rows = await db
    .selectFrom('task_files')
    .select(['validation_id', 'status'])
    .where('validation_id', 'in', ids)
    .execute();
  return new Map(rows.map((r) => [r.validation_id, r.status]));
}

/**
 * Retention: uploads created before `before`, except the version a title runs (its tasks need its
 * bytes), then titles left with neither a version nor an upload (free again for anyone).
 */
export async function deleteUploadsBefore(db: Kysely<Database>, before: string): Promise<number> {
  const res = await db
    .deleteFrom('task_files')
    .where('created_at', '<', before)
    .where(({ not, exists, selectFrom }) =>
      not(
        exists(
          selectFrom('task_titles')
            .select('task_titles.title')
            .whereRef('task_titles.validation_id', '=', 'task_files.validation_id'),
        ),
      ),
    )
    .executeTakeFirst();
  await db
    .deleteFrom('task_titles')
    .where('validation_id', 'is', null)
    .where(({ not, exists, selectFrom }) =>
      not(
        exists(
          selectFrom('task_files')
            .select('validation_id')
            .whereRef('task_files.title', '=', 'task_titles.title')
            .whereRef('task_files.owner', '=', 'task_titles.owner'),
        ),
      ),
    )
    .execute();
  return Number(res.numDeletedRows);
}
