import { piston } from 'piston-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PistonExecuteResponse, PistonStage } from '../../src/api/schemas/piston.js';
import { createApiKey } from '../../src/store/api-keys.js';
import { openStore } from '../../src/store/db.js';
import { call, startTestServer, type TestServer } from '../helpers/server.js';

/**
 * The Piston-compatible API (/api/v2/runtimes, /api/v2/execute) against a real server (queue,
 * workers, bwrap sandboxes), with piston-client, a Piston client nobody here wrote, and with plain
 * requests for what the client does not send.
 */
describe('Piston API', () => {
  let t: TestServer;
  let open: TestServer; // piston.analysis: false
  const run = (body: Record<string, unknown>, server = t) =>
    call<PistonExecuteResponse & { message?: string }>(server.url, 'POST', '/api/v2/execute', body);
  const py = (content: string, more: Record<string, unknown> = {}) =>
    run({ language: 'python', version: '*', files: [{ content }], ...more });

  beforeAll(async () => {
    [t, open] = await Promise.all([startTestServer(), startTestServer({ piston: { analysis: false } })]);
  });
  afterAll(async () => {
    await Promise.all([t?.close(), open?.close()]);
  });

  describe('with piston-client', () => {
    it('lists the runtimes with semantic versions and Piston’s aliases', async () => {
      const client = piston({ server: t.url });
      const runtimes = (await client.runtimes()) as {
        language: string;
        version: string;
        aliases: string[];
        runtime?: string;
      }[];
      expect(runtimes.map((r) => r.language).sort()).toEqual(['javascript', 'python', 'typescript']);
      for (const r of runtimes) expect(r.version).toMatch(/^\d+\.\d+\.\d+$/);
      const by = Object.fromEntries(runtimes.map((r) => [r.language, r]));
      expect(by.python!.aliases).toEqual(expect.arrayContaining(['py', 'py3', 'python3']));
      expect(by.javascript!.aliases).toEqual(expect.arrayContaining(['js', 'node', 'node-js']));
      expect(by.javascript!.runtime).toBe('node');
      expect(by.typescript!.aliases).toEqual(expect.arrayContaining(['ts', 'tsc']));
    });

    it('runs Python with stdin and the client’s default arguments', async () => {
      const client = piston({ server: t.url });
      const code = 'import sys\nprint(sys.argv[1:], repr(input()))';
      const res = (await client.execute('python', code, { stdin: 'world' })) as PistonExecuteResponse;
      expect(res.language).toBe('python');
      expect(res.run).toMatchObject({
        stdout: "['1', '2', '3'] 'world'\n",
        stderr: '',
        output: "['1', '2', '3'] 'world'\n",
        code: 0,
        signal: null,
        status: null,
        message: null,
      });
      expect(res.compile).toBeUndefined();
      // Piston's units: ms and bytes.
      expect(res.run.wall_time).toBeGreaterThan(0);
      expect(res.run.memory).toBeGreaterThan(1024 * 1024);
    });

    it('runs JavaScript with its arguments', async () => {
      const client = piston({ server: t.url });
      const res = (await client.execute('javascript', 'console.log(process.argv.slice(2).join("+"))', {
        args: ['a b', 'c'],
      })) as PistonExecuteResponse;
      expect(res.run).toMatchObject({ stdout: 'a b+c\n', code: 0, status: null });
    });

    it('runs TypeScript with a compile stage', async () => {
      const client = piston({ server: t.url });
      const res = (await client.execute('typescript', 'const n: number = 41;\nconsole.log(n + 1);', {
        args: [],
      })) as PistonExecuteResponse;
      expect(res.language).toBe('typescript');
      expect(res.compile).toMatchObject({ code: 0, status: null, stderr: '' });
      expect(res.run).toMatchObject({ stdout: '42\n', code: 0 });
    });

    it('gets Piston’s error shape for an unknown language', async () => {
      const client = piston({ server: t.url });
      const res = (await client.execute('cobol', 'DISPLAY "HI"', { version: '*' })) as { message: string };
      expect(res).toEqual({ message: 'cobol-* runtime is unknown' });
    });
  });

  describe('requests', () => {
    it('accepts aliases and version ranges, and answers the language’s own name', async () => {
      for (const [language, version, content] of [
        ['py', '3.x', 'print(1)'],
        ['python3', '>=3', 'print(1)'],
        ['node', '*', 'console.log(1)'],
        ['js', '*', 'console.log(1)'],
        ['ts', '*', 'console.log(1)'],
      ] as const) {
        const res = await run({ language, version, files: [{ content }] });
        expect(res.status, language).toBe(200);
        expect(res.body.run.stdout, language).toBe('1\n');
        expect(['python', 'javascript', 'typescript']).toContain(res.body.language);
      }
      const runtimes = await call<{ language: string; version: string }[]>(t.url, 'GET', '/api/v2/runtimes');
      const exact = runtimes.body.find((r) => r.language === 'python')!.version;
      const res = await run({ language: 'python', version: exact, files: [{ content: 'print(2)' }] });
      expect(res.body).toMatchObject({ language: 'python', version: exact, run: { stdout: '2\n' } });
    });

    it('adds Piston’s trailing newline to stdin', async () => {
      const res = await py('import sys\nprint(repr(sys.stdin.read()))', { stdin: 'a\nb' });
      expect(res.body.run.stdout).toBe("'a\\nb\\n'\n");
    });

    it('writes the other files beside the entry (utf8, base64, hex), the first utf8 file being the entry', async () => {
      const res = await run({
        language: 'python',
        version: '*',
        files: [
          { name: 'data.bin', content: Buffer.from([0, 1, 255]).toString('base64'), encoding: 'base64' },
          {
            name: 'prog.py',
            content:
              'import helper\nprint(helper.twice(21), open("data.bin", "rb").read(), open("h.txt").read())',
          },
          { name: 'helper.py', content: 'def twice(n):\n    return 2 * n\n' },
          { name: 'h.txt', content: Buffer.from('hex!').toString('hex'), encoding: 'hex' },
        ],
      });
      expect(res.status).toBe(200);
      expect(res.body.run).toMatchObject({ stdout: "42 b'\\x00\\x01\\xff' hex!\n", code: 0 });
      // Names that are object keys with a meaning in JavaScript are plain file names here.
      const odd = await run({
        language: 'python',
        version: '*',
        files: [
          { content: 'print(open("__proto__").read(), open("constructor").read())' },
          { name: '__proto__', content: 'proto' },
          { name: 'constructor', content: 'ctor' },
        ],
      });
      expect(odd.body.run).toMatchObject({ stdout: 'proto ctor\n', code: 0 });
    });

    it('writes files in directories: a Python package, a JavaScript module under lib/', async () => {
      const python = await run({
        language: 'python',
        version: '*',
        files: [
          { content: 'from pkg.mod import answer\nprint(answer())' },
          { name: 'pkg/__init__.py', content: '' },
          { name: 'pkg/mod.py', content: 'def answer():\n    return 42\n' },
        ],
      });
      expect(python.body.run).toMatchObject({ stdout: '42\n', code: 0 });
      const js = await run({
        language: 'js',
        version: '*',
        files: [
          { content: 'console.log(require("./lib/deep/util").twice(21))' },
          { name: 'lib/deep/util.js', content: 'exports.twice = (n) => 2 * n;' },
        ],
      });
      expect(js.body.run).toMatchObject({ stdout: '42\n', code: 0 });
    });

    it('compiles TypeScript modules beside the entry', async () => {
      const res = await run({
        language: 'typescript',
        version: '*',
        files: [
          { name: 'main.ts', content: 'import { twice } from "./util.js";\nconsole.log(twice(21));' },
          { name: 'util.ts', content: 'export const twice = (n: number): number => 2 * n;' },
        ],
      });
      expect(res.body.run).toMatchObject({ stdout: '42\n', code: 0 });
    });

    it('a runtime error is RE with the exit status and the traceback on stderr', async () => {
      const res = await py('print("before")\nraise ValueError("boom")');
      expect(res.status).toBe(200);
      expect(res.body.run).toMatchObject({
        stdout: 'before\n',
        code: 1,
        signal: null,
        status: 'RE',
        message: 'Exited with error status 1',
      });
      expect(res.body.run.stderr).toContain('ValueError: boom');
      expect(res.body.run.output).toBe(`before\n${res.body.run.stderr}`);
      const exit = await py('import sys\nsys.stderr.write("no newline")\nsys.exit(3)');
      expect(exit.body.run).toMatchObject({
        code: 3,
        status: 'RE',
        message: 'Exited with error status 3',
        stderr: 'no newline', // exactly as written
      });
    });

    it('a run past run_timeout is TO, killed, with Piston’s message', async () => {
      const res = await py('import time\nprint("started", flush=True)\ntime.sleep(30)', { run_timeout: 500 });
      expect(res.body.run).toMatchObject({
        stdout: 'started\n',
        code: null,
        signal: 'SIGKILL',
        status: 'TO',
        message: 'Time limit exceeded (wall clock)',
      });
      expect(res.body.run.wall_time).toBeGreaterThanOrEqual(500); // ms
    });

    it('a run past run_cpu_time is TO without "(wall clock)"', async () => {
      const res = await py('x = 0\nwhile x >= 0:\n    x += 1', { run_timeout: 20_000, run_cpu_time: 300 });
      expect(res.body.run).toMatchObject({
        code: null,
        signal: 'SIGKILL',
        status: 'TO',
        message: 'Time limit exceeded',
      });
      expect(res.body.run.cpu_time).toBeGreaterThanOrEqual(300); // ms
    });

    it('a run past run_memory_limit (bytes) is killed: SG, SIGKILL', async () => {
      const res = await run({
        language: 'javascript',
        version: '*',
        files: [
          {
            content:
              'const a = [];\nfor (let i = 0; i < 1000; i++) a.push(Buffer.alloc(1 << 24, 1));\nconsole.log("survived");',
          },
        ],
        run_memory_limit: 64 * 1024 * 1024,
      });
      expect(res.body.run).toMatchObject({
        stdout: '',
        code: null,
        signal: 'SIGKILL',
        status: 'SG',
        message: 'Caught fatal signal 9 (memory limit exceeded)',
      });
      // -1 is Piston's "no limit": Warden's own maximum, which the same program stays under.
      const unlimited = await run({
        language: 'javascript',
        version: '*',
        files: [
          {
            content:
              'const a = [];\nfor (let i = 0; i < 6; i++) a.push(Buffer.alloc(1 << 24, 1));\nconsole.log("survived");',
          },
        ],
        run_memory_limit: -1,
      });
      expect(unlimited.body.run).toMatchObject({ stdout: 'survived\n', code: 0 });
    });

    it('output past the limit is OL (stdout) or EL (stderr), killed', async () => {
      const out = await py(
        'import sys\nwhile True:\n    sys.stdout.write("x" * 65536)\n    if sys.stdout.closed:\n        break',
      );
      expect(out.body.run).toMatchObject({
        code: null,
        signal: 'SIGKILL',
        status: 'OL',
        message: 'stdout length exceeded',
      });
      const err = await py(
        'import sys\nwhile True:\n    sys.stderr.write("x" * 65536)\n    if sys.stderr.closed:\n        break',
      );
      expect(err.body.run).toMatchObject({
        code: null,
        signal: 'SIGKILL',
        status: 'EL',
        message: 'stderr length exceeded',
      });
    });

    it('code that does not compile: Python fails as a run, TypeScript in its compile stage', async () => {
      const python = await py('print("x")\ndef f(:\n  pass\n');
      expect(python.body.run).toMatchObject({ stdout: '', code: 1, status: 'RE' });
      expect(python.body.run.stderr).toMatch(/^does not compile: line 2, column \d+: /);
      const ts = await run({
        language: 'ts',
        version: '*',
        files: [{ content: 'const n: number = "x";\nconsole.log(n);' }],
      });
      expect(ts.body.compile).toMatchObject({ code: 1, status: 'RE', stdout: '' });
      expect(ts.body.compile!.stderr).toContain("TS2322: Type 'string' is not assignable to type 'number'.");
      // Piston answers the failed compile stage as the run too.
      expect(ts.body.run).toEqual(ts.body.compile);
    });

    it('code static analysis rejects answers as a failed run, the violations in message, and never runs', async () => {
      const res = await py('import os\nos.system("echo ran")');
      expect(res.status).toBe(200);
      const stage: PistonStage = res.body.run;
      expect(stage).toMatchObject({ stdout: '', code: 1, signal: null, status: 'RE', wall_time: 0 });
      expect(stage.message).toMatch(/^rejected by static analysis, not run: line 1: .*\bos\b/);
      expect(stage.stderr).toContain('line 2:');
    });

    it('analyses the other files too: a helper cannot carry what the entry may not', async () => {
      const res = await run({
        language: 'python',
        version: '*',
        files: [
          { name: 'main.py', content: 'import helper\nhelper.go()' },
          { name: 'helper.py', content: 'import subprocess\ndef go():\n    subprocess.run(["id"])\n' },
        ],
      });
      expect(res.body.run.status).toBe('RE');
      expect(res.body.run.message).toContain('helper.py: ');
      expect(res.body.run.stdout).toBe('');
      // Nor can a data file that JavaScript would load as code.
      const js = await run({
        language: 'js',
        version: '*',
        files: [
          { content: 'require("./data.txt")' },
          { name: 'data.txt', content: 'require("child_process").execSync("id")' },
        ],
      });
      expect(js.body.run.message).toContain('data.txt: ');
      // Bytecode or native code, which no analysis reads, is refused.
      const pyc = await run({
        language: 'python',
        version: '*',
        files: [{ content: 'import helper' }, { name: 'helper.pyc', content: 'AAAA', encoding: 'base64' }],
      });
      expect(pyc.status).toBe(400);
      expect(pyc.body.message).toMatch(/^files\[1\]\.name: compiled or native code \(\.pyc\)/);
    });

    it('with piston.analysis false, findings reject nothing, and a signal is SG', async () => {
      const res = await py(
        'import os\nprint("pid", os.getpid() > 0, flush=True)\nos.kill(os.getpid(), 11)',
        {},
      );
      expect(res.body.run.status).toBe('RE'); // rejected on the default server
      const ran = await run(
        {
          language: 'py',
          version: '*',
          files: [
            { content: 'import os\nprint("pid", os.getpid() > 0, flush=True)\nos.kill(os.getpid(), 11)' },
          ],
        },
        open,
      );
      expect(ran.body.run).toMatchObject({
        stdout: 'pid True\n',
        code: null,
        signal: 'SIGSEGV',
        status: 'SG',
        message: 'Caught fatal signal 11',
      });
    });
  });

  it('a forbidden system call (analysis off) is SG with the signal and the violation in message', async () => {
    const res = await run(
      {
        language: 'python',
        version: '*',
        files: [
          {
            content: 'import ctypes\nprint("before", flush=True)\nctypes.CDLL(None).syscall(101, 0, 0, 0, 0)',
          },
        ],
      },
      open,
    );
    expect(res.body.run).toMatchObject({ stdout: 'before\n', code: null, signal: 'SIGSYS', status: 'SG' });
    expect(res.body.run.message).toMatch(/^Caught fatal signal 31 \(.*forbidden system call: ptrace\)$/);
  });

  describe('with API keys', () => {
    let keyed: TestServer;
    const keys = { a: '', b: '', jobsOnly: '' };
    beforeAll(async () => {
      keyed = await startTestServer({ auth: { mode: 'keys' } });
      const store = await openStore(keyed.config);
      try {
        keys.a = (await createApiKey(store.db, { tenant: 'piston-a' })).key;
        keys.b = (await createApiKey(store.db, { tenant: 'piston-b' })).key;
        keys.jobsOnly = (await createApiKey(store.db, { tenant: 'piston-a', scopes: ['jobs'] })).key;
      } finally {
        await store.close();
      }
    });
    afterAll(() => keyed?.close());
    const body = { language: 'py', version: '*', files: [{ content: 'print("keyed")' }] };
    const as = (key: string): Record<string, string> => ({ authorization: `Bearer ${key}` });

    it('needs a key with the execute scope; refusals are { message } too', async () => {
      const none = await call(keyed.url, 'POST', '/api/v2/execute', body);
      expect(none.status).toBe(401);
      expect(Object.keys(none.body)).toEqual(['message']);
      const outOfScope = await call(keyed.url, 'POST', '/api/v2/execute', body, as(keys.jobsOnly));
      expect(outOfScope.status).toBe(403);
      expect(Object.keys(outOfScope.body)).toEqual(['message']);
      const runtimes = await call(keyed.url, 'GET', '/api/v2/runtimes');
      expect(runtimes.status).toBe(401);
    });

    it('runs for the key’s tenant: its execution is that tenant’s alone', async () => {
      const res = await call<PistonExecuteResponse>(keyed.url, 'POST', '/api/v2/execute', body, as(keys.a));
      expect(res.status).toBe(200);
      expect(res.body.run.stdout).toBe('keyed\n');
      const id = res.headers.get('x-request-id');
      expect((await call(keyed.url, 'GET', `/executions/${id}`, undefined, as(keys.a))).status).toBe(200);
      expect((await call(keyed.url, 'GET', `/executions/${id}`, undefined, as(keys.b))).status).toBe(404);
    });
  });

  describe('errors: 400 { message }', () => {
    it.each([
      [{ version: '*', files: [{ content: 'x' }] }, 'language is required as a string'],
      [{ language: 'python', files: [{ content: 'x' }] }, 'version is required as a string'],
      [{ language: 'python', version: '*' }, 'files is required as an array'],
      [
        { language: 'python', version: '*', files: [{ name: 'a.py' }] },
        'files[0].content is required as a string',
      ],
      [{ language: 'python', version: '*', files: [] }, 'files must include at least one utf8 encoded file'],
      [
        { language: 'python', version: '*', files: [{ content: 'AA', encoding: 'base64' }] },
        'files must include at least one utf8 encoded file',
      ],
      [{ language: 'cobol', version: '*', files: [{ content: 'x' }] }, 'cobol-* runtime is unknown'],
      [{ language: 'python', version: '2.x', files: [{ content: 'x' }] }, 'python-2.x runtime is unknown'],
      [
        { language: 'python', version: 'latest', files: [{ content: 'x' }] },
        'python-latest runtime is unknown',
      ],
      [
        { language: 'python', version: '*', files: [{ content: 'x' }], run_timeout: 'soon' },
        'If specified, run_timeout must be a number',
      ],
      [
        { language: 'python', version: '*', files: [{ content: 'x' }], run_timeout: -5 },
        'run_timeout must be non-negative',
      ],
      [
        { language: 'python', version: '*', files: [{ content: 'x' }, { name: '../x.py', content: 'y' }] },
        'files[1].name must be a relative path of plain names (none empty or starting with ".")',
      ],
      [
        { language: 'python', version: '*', files: [{ content: 'x' }, { name: '/etc/x.py', content: 'y' }] },
        'files[1].name must be a relative path of plain names (none empty or starting with ".")',
      ],
      [
        { language: 'python', version: '*', files: [{ content: 'x' }, { name: 'a//b.py', content: 'y' }] },
        'files[1].name must be a relative path of plain names (none empty or starting with ".")',
      ],
      [
        {
          language: 'python',
          version: '*',
          files: [{ content: 'x' }, { name: 'pkg/.hidden', content: 'y' }],
        },
        'files[1].name must be a relative path of plain names (none empty or starting with ".")',
      ],
      [
        {
          language: 'python',
          version: '*',
          files: [{ content: 'x' }, { name: 'lib', content: '' }, { name: 'lib/a.py', content: '' }],
        },
        'files: "lib" is both a file and a directory',
      ],
      [
        { language: 'python', version: '*', files: [{ content: 'x' }], args: Array(1001).fill('a') },
        'args can hold at most 1000 arguments',
      ],
      [
        { language: 'python', version: '*', files: Array(101).fill({ content: 'x' }) },
        'files can hold at most 100 files',
      ],
    ])('%j → %s', async (body, message) => {
      const res = await run(body);
      expect(res.status).toBe(400);
      expect(res.body).toEqual({ message });
    });

    it('a body that is not JSON is a 400 { message }', async () => {
      const res = await call<{ message: string }>(t.url, 'POST', '/api/v2/execute', '{"language":', {
        'content-type': 'application/json',
      });
      expect(res.status).toBe(400);
      expect(Object.keys(res.body)).toEqual(['message']);
    });
  });
});
