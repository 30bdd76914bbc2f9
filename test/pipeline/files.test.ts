import { createHash } from 'node:crypto';
import {
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  MAX_TASK_NAME_CHARS,
  TaskFileExistsError,
  UnsafeFileNameError,
  installTaskFile,
  listStaged,
  promote,
  quarantine,
  recoverValidationFile,
  safeTaskName,
  stageFile,
  stagedPath,
  type ValidationDirs,
} from '../../src/pipeline/files.js';

const CODE = 'async def handler(payload):\n    return payload\n';
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

const made: string[] = [];
function tempDir(base = tmpdir()): string {
  const dir = mkdtempSync(join(base, 'warden-files-'));
  made.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function dirs(root = tempDir(), other = root): ValidationDirs {
  return {
    stagingDir: join(root, 'staging'),
    tasksDir: join(other, 'tasks'),
    quarantineDir: join(other, 'quarantine'),
  };
}

const ls = (dir: string) => (existsSync(dir) ? readdirSync(dir).sort() : []);

/** A second filesystem (tmpfs), so moves between it and the temp dir cross devices. */
const SHM = '/dev/shm';
const crossDevice = existsSync(SHM) && statSync(SHM).dev !== statSync(tmpdir()).dev;

describe('safeTaskName', () => {
  it.each([
    ['my_task.py', 'my_task', 'my_task.py', 'python'],
    ['Report-2.TS', 'Report-2', 'Report-2.ts', 'typescript'],
    ['etl.mjs', 'etl', 'etl.mjs', 'javascript'],
    ['a.js', 'a', 'a.js', 'javascript'],
  ])('accepts %j', (original, title, fileName, language) => {
    const name = safeTaskName(original);
    expect({ title: name.title, fileName: name.fileName, language: name.language.id }).toEqual({
      title,
      fileName,
      language,
    });
  });

  it.each([
    ['../../etc/x.py', /bare name, not a path/],
    ['/abs.py', /bare name, not a path/],
    ['a/b.py', /bare name, not a path/],
    ['..\\..\\x.py', /bare name, not a path/],
    ['C:\\tasks\\x.py', /bare name, not a path/],
    ['.hidden.py', /hidden file names/],
    ['..', /hidden file names/],
    ['.py', /hidden file names/],
    ['x.exe', /"\.exe" is not a task file extension/],
    ['x.py.exe', /"\.exe" is not a task file extension/],
    ['x.exe.py', /may only hold letters, digits/],
    ['noextension', /has no extension/],
    ['', /empty/],
    [`${'a'.repeat(297)}.py`, new RegExp(`300 characters long; at most ${MAX_TASK_NAME_CHARS}`)],
    ['bad name.py', /may only hold letters, digits/],
    ['-rf.py', /must start with a letter or digit/],
    ['tâche.py', /may only hold letters, digits/],
    ['x\u0000.py', /control characters/],
    ['x\n.py', /control characters/],
  ])('refuses %j', (original, message) => {
    let error: unknown;
    try {
      safeTaskName(original);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(UnsafeFileNameError);
    expect((error as UnsafeFileNameError).message).toMatch(message);
    expect((error as UnsafeFileNameError).field).toBe('file');
  });

  it('checks the extension against a declared language', () => {
    expect(safeTaskName('x.py', 'python3').language.id).toBe('python');
    expect(() => safeTaskName('x.py', 'javascript')).toThrow(
      /extension \.py does not match the language javascript/,
    );
    expect(() => safeTaskName('x.py', 'cobol')).toThrow(/unknown language "cobol"/);
  });
});

describe('stageFile', () => {
  it('writes the upload under its validation id, with its digest, leaving no partial file', async () => {
    const d = dirs();
    const staged = await stageFile(d.stagingDir, 'v-1', CODE);
    expect(staged).toEqual({ path: join(d.stagingDir, 'v-1.task'), sha256: sha256(CODE), size: CODE.length });
    expect(readFileSync(staged.path, 'utf8')).toBe(CODE);
    expect(statSync(staged.path).mode & 0o777).toBe(0o600);
    expect(ls(d.stagingDir)).toEqual(['v-1.task']);
    expect(await listStaged(d.stagingDir)).toEqual(['v-1']);
  });

  it('never replaces a staged upload, and refuses ids that could escape the dir', async () => {
    const d = dirs();
    await stageFile(d.stagingDir, 'v-1', CODE);
    await expect(stageFile(d.stagingDir, 'v-1', 'other')).rejects.toThrow(/already staged/);
    expect(readFileSync(stagedPath(d.stagingDir, 'v-1'), 'utf8')).toBe(CODE);
    await expect(stageFile(d.stagingDir, '../v-2', CODE)).rejects.toThrow(/invalid validation id/);
    expect(ls(d.stagingDir)).toEqual(['v-1.task']);
  });

  it('replaces the partial file a crash left under the same id', async () => {
    const d = dirs();
    mkdirSync(d.stagingDir, { recursive: true });
    writeFileSync(join(d.stagingDir, 'v-1.task.partial'), 'half of an earlier wri');
    const staged = await stageFile(d.stagingDir, 'v-1', CODE);
    expect(readFileSync(staged.path, 'utf8')).toBe(CODE);
    expect(ls(d.stagingDir)).toEqual(['v-1.task']);
  });
});

describe.each([
  ['within one filesystem', false],
  ['across filesystems', true],
])('promote and quarantine %s', (_name, across) => {
  const layout = () => (across ? dirs(tempDir(), tempDir(SHM)) : dirs());

  it.skipIf(across && !crossDevice)(
    'promote moves the file into the tasks dir and empties staging',
    async () => {
      const d = layout();
      const staged = await stageFile(d.stagingDir, 'v-1', CODE);
      const path = await promote(staged.path, d.tasksDir, 'my_task.py');
      expect(path).toBe(join(d.tasksDir, 'my_task.py'));
      expect(readFileSync(path, 'utf8')).toBe(CODE);
      expect(ls(d.stagingDir)).toEqual([]);
      expect(ls(d.tasksDir)).toEqual(['my_task.py']);
    },
  );

  it.skipIf(across && !crossDevice)(
    'promote refuses to replace an existing task file unless told to',
    async () => {
      const d = layout();
      mkdirSync(d.tasksDir, { recursive: true });
      writeFileSync(join(d.tasksDir, 'my_task.py'), 'owned by someone else');
      const staged = await stageFile(d.stagingDir, 'v-1', CODE);
      await expect(promote(staged.path, d.tasksDir, 'my_task.py')).rejects.toBeInstanceOf(
        TaskFileExistsError,
      );
      expect(readFileSync(join(d.tasksDir, 'my_task.py'), 'utf8')).toBe('owned by someone else');
      expect(ls(d.stagingDir)).toEqual(['v-1.task']);
      expect(ls(d.tasksDir)).toEqual(['my_task.py']);

      await promote(staged.path, d.tasksDir, 'my_task.py', { overwrite: true });
      expect(readFileSync(join(d.tasksDir, 'my_task.py'), 'utf8')).toBe(CODE);
      expect(ls(d.stagingDir)).toEqual([]);
      expect(ls(d.tasksDir)).toEqual(['my_task.py']);
    },
  );

  it.skipIf(across && !crossDevice)(
    'quarantine moves the file aside with its reasons and empties staging',
    async () => {
      const d = layout();
      const staged = await stageFile(d.stagingDir, 'v-1', CODE);
      const out = await quarantine({ stagingPath: staged.path }, d.quarantineDir, 'v-1', ['no handler']);
      expect(ls(d.quarantineDir)).toEqual(['v-1.quarantined', 'v-1.reasons.json']);
      expect(readFileSync(out.path, 'utf8')).toBe(CODE);
      expect(JSON.parse(readFileSync(out.reasonsPath, 'utf8'))).toMatchObject({
        validation_id: 'v-1',
        reasons: ['no handler'],
      });
      expect(ls(d.stagingDir)).toEqual([]);
      expect(ls(d.tasksDir)).toEqual([]);
    },
  );
});

describe('an upload staged on another node (its bytes come from the store)', () => {
  it('installTaskFile writes the validated bytes into the tasks dir, replacing the previous version', async () => {
    const d = dirs();
    mkdirSync(d.tasksDir, { recursive: true });
    writeFileSync(join(d.tasksDir, 'my_task.py'), 'the previous version');
    const path = await installTaskFile(d.tasksDir, 'my_task.py', 'v-1', Buffer.from(CODE));
    expect(path).toBe(join(d.tasksDir, 'my_task.py'));
    expect(readFileSync(path, 'utf8')).toBe(CODE);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(ls(d.tasksDir)).toEqual(['my_task.py']);
    // Recognised as this validation's promoted file by its digest; nothing was ever staged here.
    expect(await recoverValidationFile(d, 'v-1', { fileName: 'my_task.py', sha256: sha256(CODE) })).toBe(
      'promoted',
    );
    await expect(installTaskFile(d.tasksDir, '../escape.py', 'v-1', Buffer.from(CODE))).rejects.toThrow(
      /invalid task file name/,
    );
  });

  it('a temp file an install left behind in a crash is removed by recovery', async () => {
    const d = dirs();
    mkdirSync(d.tasksDir, { recursive: true });
    writeFileSync(join(d.tasksDir, '.warden-v-1.task-0123456789ab.tmp'), CODE);
    expect(await recoverValidationFile(d, 'v-1', { fileName: 'my_task.py', sha256: sha256(CODE) })).toBe(
      'missing',
    );
    expect(ls(d.tasksDir)).toEqual([]);
  });

  it('quarantine writes the rejected bytes aside with their reasons', async () => {
    const d = dirs();
    const out = await quarantine({ bytes: Buffer.from(CODE) }, d.quarantineDir, 'v-1', ['no handler']);
    expect(ls(d.quarantineDir)).toEqual(['v-1.quarantined', 'v-1.reasons.json']);
    expect(readFileSync(out.path, 'utf8')).toBe(CODE);
    expect(JSON.parse(readFileSync(out.reasonsPath, 'utf8')).reasons).toEqual(['no handler']);
    expect(await recoverValidationFile(d, 'v-1')).toBe('quarantined');
  });
});

it('promote refuses file names that are paths or hidden', async () => {
  const d = dirs();
  const staged = await stageFile(d.stagingDir, 'v-1', CODE);
  await expect(promote(staged.path, d.tasksDir, '../escape.py')).rejects.toThrow(/invalid task file name/);
  await expect(promote(staged.path, d.tasksDir, '.hidden.py')).rejects.toThrow(/invalid task file name/);
  expect(ls(d.stagingDir)).toEqual(['v-1.task']);
});

describe('recoverValidationFile settles what a crash left behind', () => {
  it('a promotion that linked the file but crashed before removing the staged name', async () => {
    const d = dirs();
    const staged = await stageFile(d.stagingDir, 'v-1', CODE);
    mkdirSync(d.tasksDir, { recursive: true });
    linkSync(staged.path, join(d.tasksDir, 'my_task.py'));
    expect(await recoverValidationFile(d, 'v-1', { fileName: 'my_task.py' })).toBe('promoted');
    expect(ls(d.stagingDir)).toEqual([]);
    expect(readFileSync(join(d.tasksDir, 'my_task.py'), 'utf8')).toBe(CODE);
  });

  it('a cross-filesystem promotion that copied the file but crashed before removing the staged one', async () => {
    const d = dirs();
    const staged = await stageFile(d.stagingDir, 'v-1', CODE);
    mkdirSync(d.tasksDir, { recursive: true });
    writeFileSync(join(d.tasksDir, 'my_task.py'), CODE);
    writeFileSync(join(d.tasksDir, '.warden-v-1.task-0123456789ab.tmp'), CODE);
    expect(await recoverValidationFile(d, 'v-1', { fileName: 'my_task.py', sha256: staged.sha256 })).toBe(
      'promoted',
    );
    expect(ls(d.stagingDir)).toEqual([]);
    expect(ls(d.tasksDir)).toEqual(['my_task.py']);
  });

  it('a promoted file is recognised by its digest once staging is gone, and only by it', async () => {
    const d = dirs();
    mkdirSync(d.tasksDir, { recursive: true });
    writeFileSync(join(d.tasksDir, 'my_task.py'), CODE);
    expect(await recoverValidationFile(d, 'v-1', { fileName: 'my_task.py', sha256: sha256(CODE) })).toBe(
      'promoted',
    );
    expect(
      await recoverValidationFile(d, 'v-2', { fileName: 'my_task.py', sha256: sha256('other upload') }),
    ).toBe('missing');
    expect(await recoverValidationFile(d, 'v-3', { fileName: 'my_task.py' })).toBe('missing');
  });

  it("another owner's file under the same name is not claimed, nor touched", async () => {
    const d = dirs();
    await stageFile(d.stagingDir, 'v-1', CODE);
    mkdirSync(d.tasksDir, { recursive: true });
    writeFileSync(join(d.tasksDir, 'my_task.py'), 'owned by someone else');
    expect(await recoverValidationFile(d, 'v-1', { fileName: 'my_task.py' })).toBe('staging');
    expect(ls(d.stagingDir)).toEqual(['v-1.task']);
    expect(readFileSync(join(d.tasksDir, 'my_task.py'), 'utf8')).toBe('owned by someone else');
  });

  it('a quarantine that wrote its reasons but crashed before the move is finished', async () => {
    const d = dirs();
    await stageFile(d.stagingDir, 'v-1', CODE);
    mkdirSync(d.quarantineDir, { recursive: true });
    writeFileSync(join(d.quarantineDir, 'v-1.reasons.json'), '{"reasons": ["timed out"]}');
    expect(await recoverValidationFile(d, 'v-1', { fileName: 'my_task.py' })).toBe('quarantined');
    expect(ls(d.stagingDir)).toEqual([]);
    expect(ls(d.quarantineDir)).toEqual(['v-1.quarantined', 'v-1.reasons.json']);
    expect(readFileSync(join(d.quarantineDir, 'v-1.quarantined'), 'utf8')).toBe(CODE);
  });

  it('a cross-filesystem quarantine that crashed after the copy', async () => {
    const d = dirs();
    await stageFile(d.stagingDir, 'v-1', CODE);
    mkdirSync(d.quarantineDir, { recursive: true });
    writeFileSync(join(d.quarantineDir, 'v-1.reasons.json'), '{}');
    writeFileSync(join(d.quarantineDir, 'v-1.quarantined'), CODE);
    writeFileSync(join(d.quarantineDir, '.warden-v-1-0123456789ab.tmp'), CODE);
    expect(await recoverValidationFile(d, 'v-1')).toBe('quarantined');
    expect(ls(d.stagingDir)).toEqual([]);
    expect(ls(d.quarantineDir)).toEqual(['v-1.quarantined', 'v-1.reasons.json']);
  });

  it('an upload still waiting for validation stays staged', async () => {
    const d = dirs();
    await stageFile(d.stagingDir, 'v-1', CODE);
    expect(await recoverValidationFile(d, 'v-1', { fileName: 'my_task.py' })).toBe('staging');
    expect(ls(d.stagingDir)).toEqual(['v-1.task']);
  });

  it('an upload that crashed mid-write leaves nothing', async () => {
    const d = dirs();
    mkdirSync(d.stagingDir, { recursive: true });
    writeFileSync(join(d.stagingDir, 'v-1.task.partial'), CODE.slice(0, 10));
    expect(await listStaged(d.stagingDir)).toEqual([]);
    expect(await recoverValidationFile(d, 'v-1', { fileName: 'my_task.py' })).toBe('missing');
    expect(ls(d.stagingDir)).toEqual([]);
  });
});
