import { createHash, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { copyFile, link, mkdir, open, readFile, rename, stat, unlink, readdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { findLanguage, languageForFile, type Language } from '../languages/index.js';
import { TENANT_RE } from '../store/api-keys.js';

/**
 * Where an uploaded task file lives on its way through validation (SPEC §6): the staging dir while
 * it waits, the tasks dir once validated, the quarantine dir once rejected. Every move is a rename
 * or a no-clobber link within one filesystem, so a crash leaves the file in one place, or in two
 * places that recoverValidationFile can tell apart and settle.
 */

export const MAX_TASK_NAME_CHARS = 100;
const TITLE_RE = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;
/** Validation ids name files in staging and quarantine; they come from Warden, but are checked anyway. */
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

const STAGED_SUFFIX = '.task';
const PARTIAL_SUFFIX = '.partial';
const QUARANTINED_SUFFIX = '.quarantined';
const REASONS_SUFFIX = '.reasons.json';
/** Prefix of the temporary copies a cross-filesystem move leaves in the target dir while it works. */
const TEMP_PREFIX = '.warden-';

export class UnsafeFileNameError extends Error {
  /** The request field at fault, for a 400 that names it. */
  readonly field = 'file';

  constructor(message: string) {
    super(message);
    this.name = 'UnsafeFileNameError';
  }
}

/** A validated file already holds that name and the caller did not allow replacing it. */
export class TaskFileExistsError extends Error {
  readonly path: string;

  constructor(path: string) {
    super(`a task file named ${basename(path)} already exists`);
    this.name = 'TaskFileExistsError';
    this.path = path;
  }
}

export interface TaskName {
  /** What `POST /tasks` names the task by: the file name without its extension. */
  title: string;
  /** The name it gets in the tasks dir (extension lower-cased). */
  fileName: string;
  language: Language;
}

/**
 * The title, file name and language of an uploaded file's name, or UnsafeFileNameError. Only a bare
 * name is accepted: a path (even one that would reduce to a safe basename) is refused rather than
 * silently trimmed, since it says the client is not sending what it thinks.
 */
export function safeTaskName(original: string, declaredLanguage?: string): TaskName {
  if (typeof original !== 'string' || original.length === 0)
    throw new UnsafeFileNameError('the file name is empty');
  if (original.length > MAX_TASK_NAME_CHARS) {
    throw new UnsafeFileNameError(
      `the file name is ${original.length} characters long; at most ${MAX_TASK_NAME_CHARS} are allowed`,
    );
  }
  if (/[/\\]/.test(original)) throw new UnsafeFileNameError('the file name must be a bare name, not a path');
  if (original.startsWith('.'))
    throw new UnsafeFileNameError('hidden file names (starting with ".") are not allowed');
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(original))
    throw new UnsafeFileNameError('the file name contains control characters');
  const dot = original.lastIndexOf('.');
  if (dot <= 0) throw new UnsafeFileNameError('the file name has no extension; use .py, .js or .ts');
  const title = original.slice(0, dot);
  const extension = original.slice(dot).toLowerCase();
  const language = languageForFile(extension);
  if (!language) {
    throw new UnsafeFileNameError(`"${extension}" is not a task file extension; use .py, .js or .ts`);
  }
  if (!TITLE_RE.test(title)) {
    throw new UnsafeFileNameError(
      'the file name may only hold letters, digits, "_" and "-" before its extension, and must start with a letter or digit',
    );
  }
  if (declaredLanguage !== undefined) {
    const declared = findLanguage(declaredLanguage);
    if (!declared) throw new UnsafeFileNameError(`unknown language "${declaredLanguage}"`);
    if (declared.id !== language.id) {
      throw new UnsafeFileNameError(
        `the file name's extension ${extension} does not match the language ${declared.id}`,
      );
    }
  }
  return { title, fileName: `${title}${extension}`, language };
}

function checkId(validationId: string): void {
  if (!ID_RE.test(validationId))
    throw new RangeError(`invalid validation id ${JSON.stringify(validationId)}`);
}

function checkFileName(fileName: string): void {
  if (fileName !== basename(fileName) || fileName.startsWith('.') || fileName.length === 0) {
    throw new RangeError(`invalid task file name ${JSON.stringify(fileName)}`);
  }
}

function isCode(err: unknown, code: string): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === code;
}

async function ensureDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
}

async function writeDurably(path: string, bytes: Uint8Array | string): Promise<void> {
  const handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * writeDurably at a name Warden owns, creating its dir when missing and replacing a leftover a crash
 * left at that name. Only a write that meets either pays for the check: on an upload's path every
 * file-system call is a thread-pool round trip (≈ 0.2 ms idle, ≈ 1 ms on a busy machine).
 */
async function writeReplacing(path: string, bytes: Uint8Array | string): Promise<void> {
  try {
    await writeDurably(path, bytes);
  } catch (err) {
    if (!isCode(err, 'ENOENT') && !isCode(err, 'EEXIST')) throw err;
    await ensureDir(dirname(path));
    await unlinkIfPresent(path);
    await writeDurably(path, bytes);
  }
}

export const sha256 = (bytes: Uint8Array | string) => createHash('sha256').update(bytes).digest('hex');

async function syncDir(dir: string): Promise<void> {
  // A rename is only durable once the directory holding it is flushed.
  const handle = await open(dir, constants.O_RDONLY);
  try {
    await handle.sync();
  } catch {
    /* some filesystems refuse fsync on a directory; the rename still happened */
  } finally {
    await handle.close();
  }
}

export async function unlinkIfPresent(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (err) {
    if (!isCode(err, 'ENOENT')) throw err;
  }
}

async function statIfPresent(path: string) {
  try {
    return await stat(path);
  } catch (err) {
    if (isCode(err, 'ENOENT')) return null;
    throw err;
  }
}

/**
 * A tenant's directory inside the tasks dir: titles are per tenant, so two tenants' `foo.py` are two
 * files. Tenant names are checked here too, since they become a path component.
 */
export function tenantTasksDir(tasksDir: string, tenant: string): string {
  if (!TENANT_RE.test(tenant)) throw new RangeError(`invalid tenant ${JSON.stringify(tenant)}`);
  return join(tasksDir, tenant);
}

export function stagedPath(stagingDir: string, validationId: string): string {
  checkId(validationId);
  return join(stagingDir, `${validationId}${STAGED_SUFFIX}`);
}

export interface StagedFile {
  path: string;
  /** Record it with the validation: recoverValidationFile uses it to recognise the promoted file. */
  sha256: string;
  size: number;
}

/**
 * Writes an upload to the staging dir under its validation id (never under the user's name). The
 * bytes go to a `.partial` file first, so a crash mid-write leaves nothing that looks staged.
 */
export async function stageFile(
  stagingDir: string,
  validationId: string,
  bytes: Uint8Array | string,
): Promise<StagedFile> {
  const target = stagedPath(stagingDir, validationId);
  const partial = `${target}${PARTIAL_SUFFIX}`;
  await writeReplacing(partial, bytes);
  try {
    await link(partial, target);
  } catch (err) {
    await unlinkIfPresent(partial);
    if (isCode(err, 'EEXIST')) throw new Error(`validation ${validationId} is already staged`);
    throw err;
  }
  await unlink(partial);
  await syncDir(stagingDir);
  const data = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes;
  return { path: target, sha256: sha256(data), size: data.byteLength };
}

/** A temp file in `dir` holding a copy of `source`, for moves across filesystems. */
async function copyInto(source: string, dir: string, tag: string): Promise<string> {
  const temp = join(dir, `${TEMP_PREFIX}${tag}-${randomBytes(6).toString('hex')}.tmp`);
  await copyFile(source, temp, constants.COPYFILE_EXCL);
  const handle = await open(temp, constants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
  return temp;
}

/**
 * Moves a staged file into the tasks dir as `fileName`, atomically: readers of the tasks dir see the
 * whole file or nothing. Refuses (TaskFileExistsError) to replace an existing file unless
 * `overwrite` is set; whether replacing is allowed (same owner) is the caller's decision.
 */
export async function promote(
  stagingPath: string,
  tasksDir: string,
  fileName: string,
  options: { overwrite?: boolean } = {},
): Promise<string> {
  checkFileName(fileName);
  const target = join(tasksDir, fileName);
  const move = async () => {
    if (options.overwrite) {
      await rename(stagingPath, target);
    } else {
      // link() fails on an existing name, so the check and the move are one step. Until the unlink
      // the file has two names with one inode, which recovery recognises as a finished promotion.
      await link(stagingPath, target);
      await unlink(stagingPath);
    }
  };
  try {
    try {
      await move();
    } catch (err) {
      // The dir is made by the first promotion into it (checked only then: one call less on the
      // upload's path); a missing staged file fails again.
      if (!isCode(err, 'ENOENT') || (await statIfPresent(tasksDir)) !== null) throw err;
      await ensureDir(tasksDir);
      await move();
    }
  } catch (err) {
    if (isCode(err, 'EEXIST')) throw new TaskFileExistsError(target);
    if (!isCode(err, 'EXDEV')) throw err;
    await promoteAcrossDevices(stagingPath, target, options.overwrite === true);
  }
  await syncDir(tasksDir);
  return target;
}

async function promoteAcrossDevices(stagingPath: string, target: string, overwrite: boolean): Promise<void> {
  const temp = await copyInto(stagingPath, dirname(target), basename(stagingPath));
  try {
    if (overwrite) {
      await rename(temp, target);
    } else {
      try {
        await link(temp, target);
      } catch (err) {
        if (isCode(err, 'EEXIST')) throw new TaskFileExistsError(target);
        throw err;
      }
    }
  } catch (err) {
    await unlinkIfPresent(temp);
    throw err;
  }
  // The staging copy goes before the temp one: a crash in between leaves no staged file behind.
  await unlink(stagingPath);
  await unlinkIfPresent(temp);
}

/**
 * Writes bytes to `target` atomically (readers see the whole file or the one before), through a temp
 * file named like the temp copies of cross-filesystem moves, which recovery removes if a crash
 * leaves one behind.
 */
async function writeAtomically(target: string, bytes: Uint8Array, tag: string): Promise<void> {
  const temp = join(dirname(target), `${TEMP_PREFIX}${tag}-${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeDurably(temp, bytes);
    await rename(temp, target);
  } catch (err) {
    await unlinkIfPresent(temp);
    throw err;
  }
  await syncDir(dirname(target));
}

/**
 * Puts a validated upload's bytes (from the store) into the tasks dir as `fileName`, replacing what
 * is there: what a worker does instead of promote() when the upload was staged on another node.
 */
export async function installTaskFile(
  tasksDir: string,
  fileName: string,
  validationId: string,
  bytes: Uint8Array,
): Promise<string> {
  checkFileName(fileName);
  await ensureDir(tasksDir);
  const target = join(tasksDir, fileName);
  await writeAtomically(target, bytes, basename(stagedPath(tasksDir, validationId)));
  return target;
}

/** rename(), or copy + rename + unlink across filesystems (a crash leaves the file in both places). */
async function moveInto(source: string, target: string, tag: string): Promise<void> {
  try {
    await rename(source, target);
  } catch (err) {
    if (!isCode(err, 'EXDEV')) throw err;
    const temp = await copyInto(source, dirname(target), tag);
    await rename(temp, target);
    await unlink(source);
  }
}

export interface QuarantineRecord {
  validation_id: string;
  reasons: string[];
  quarantined_at: string;
}

/**
 * Moves a rejected file aside, with `<id>.reasons.json` beside it: the staged file, or its bytes from
 * the store when it was staged on another node. The reasons are written first: a crash before the
 * move leaves a staged file plus its reasons, which recovery finishes quarantining.
 */
export async function quarantine(
  source: { stagingPath: string } | { bytes: Uint8Array },
  quarantineDir: string,
  validationId: string,
  reasons: string[],
): Promise<{ path: string; reasonsPath: string }> {
  checkId(validationId);
  await ensureDir(quarantineDir);
  const record: QuarantineRecord = {
    validation_id: validationId,
    reasons,
    quarantined_at: new Date().toISOString(),
  };
  const reasonsPath = join(quarantineDir, `${validationId}${REASONS_SUFFIX}`);
  const reasonsTemp = `${reasonsPath}.${randomBytes(6).toString('hex')}.tmp`;
  await writeDurably(reasonsTemp, `${JSON.stringify(record, null, 2)}\n`);
  await rename(reasonsTemp, reasonsPath);
  const path = join(quarantineDir, `${validationId}${QUARANTINED_SUFFIX}`);
  if ('stagingPath' in source) {
    await moveInto(source.stagingPath, path, validationId);
    await syncDir(quarantineDir);
  } else {
    await writeAtomically(path, source.bytes, validationId);
  }
  return { path, reasonsPath };
}

export interface ValidationDirs {
  stagingDir: string;
  tasksDir: string;
  quarantineDir: string;
}

export type FileLocation =
  /** Waiting for (or in the middle of) validation. */
  | 'staging'
  | 'promoted'
  | 'quarantined'
  /** Never fully uploaded, or already cleaned up. */
  | 'missing';

async function sha256Of(path: string): Promise<string | null> {
  try {
    return sha256(await readFile(path));
  } catch (err) {
    if (isCode(err, 'ENOENT')) return null;
    throw err;
  }
}

/** Temp copies a cross-filesystem move of this staged file left in `dir`. */
async function tempsOf(dir: string, tag: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if (isCode(err, 'ENOENT')) return [];
    throw err;
  }
  const prefix = `${TEMP_PREFIX}${tag}-`;
  return names
    .filter((n) => n.startsWith(prefix) && /^[0-9a-f]{12}\.tmp$/.test(n.slice(prefix.length)))
    .map((n) => join(dir, n));
}

export interface RecoveryHints {
  /** The tasks-dir name recorded for the validation. */
  fileName?: string;
  /** The upload's digest as stageFile reported it; proves a tasks-dir file is this validation's. */
  sha256?: string;
}

/**
 * Where a validation's file is, settling what a crash left half-done so that the answer is one place:
 * - staged and also in the tasks dir under `fileName` with the same inode or the same bytes: the
 *   promotion finished, the staged name is removed → `promoted`;
 * - not staged, and the tasks-dir file has the recorded sha256 → `promoted` (without the digest a
 *   file of that name could be another upload's, so it is not claimed);
 * - staged with its reasons written, or also in quarantine: quarantined (the move is finished);
 * - leftovers (`.partial` uploads, temp copies of cross-filesystem moves) are removed.
 */
export async function recoverValidationFile(
  dirs: ValidationDirs,
  validationId: string,
  hints: RecoveryHints = {},
): Promise<FileLocation> {
  const staged = stagedPath(dirs.stagingDir, validationId);
  if (hints.fileName !== undefined) checkFileName(hints.fileName);
  const target = hints.fileName === undefined ? null : join(dirs.tasksDir, hints.fileName);
  const quarantined = join(dirs.quarantineDir, `${validationId}${QUARANTINED_SUFFIX}`);
  const removeAll = async (paths: Promise<string[]>) => {
    for (const path of await paths) await unlinkIfPresent(path);
  };
  // Every look and every leftover at once: each is a thread-pool round trip, and none depends on
  // another (leftovers have names of their own; what is decided below only reads these answers).
  const [stagedInfo, targetInfo, digest, isQuarantined, hasReasons] = await Promise.all([
    statIfPresent(staged),
    target ? statIfPresent(target) : null,
    target ? sha256Of(target) : null,
    statIfPresent(quarantined).then((s) => s !== null),
    statIfPresent(join(dirs.quarantineDir, `${validationId}${REASONS_SUFFIX}`)).then((s) => s !== null),
    unlinkIfPresent(`${staged}${PARTIAL_SUFFIX}`),
    removeAll(tempsOf(dirs.quarantineDir, validationId)),
    target ? removeAll(tempsOf(dirs.tasksDir, basename(staged))) : null,
  ]);
  const isStaged = stagedInfo !== null;

  if (digest !== null) {
    const sameInode =
      stagedInfo !== null &&
      targetInfo !== null &&
      stagedInfo.dev === targetInfo.dev &&
      stagedInfo.ino === targetInfo.ino;
    const promoted = isStaged ? sameInode || digest === (await sha256Of(staged)) : digest === hints.sha256;
    if (promoted) {
      await unlinkIfPresent(staged);
      return 'promoted';
    }
  }

  if (isStaged && isQuarantined) {
    await unlink(staged);
    return 'quarantined';
  }
  if (isStaged && hasReasons) {
    await moveInto(staged, quarantined, validationId);
    return 'quarantined';
  }
  if (isStaged) return 'staging';
  return isQuarantined ? 'quarantined' : 'missing';
}

/** Validation ids with a file in staging (a worker starting up re-queues or settles these). */
export async function listStaged(stagingDir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(stagingDir);
  } catch (err) {
    if (isCode(err, 'ENOENT')) return [];
    throw err;
  }
  return names
    .filter((n) => n.endsWith(STAGED_SUFFIX))
    .map((n) => n.slice(0, -STAGED_SUFFIX.length))
    .filter((id) => ID_RE.test(id));
}
