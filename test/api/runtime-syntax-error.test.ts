import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExecutionResponse } from '../../src/runner/index.js';
import { call, startTestServer, type TestServer } from '../helpers/server.js';

/**
 * Code the static parser accepts but the runtime refuses to compile when it loads the program is
 * `compile_error` (SPEC §1), told with the runtime's message and line; nothing of it runs. A
 * SyntaxError the program raises while running (eval, compile()) stays `failed`, and a program
 * imitating the bootstrap's report cannot pass for a compile error. Real server, queue and sandboxes.
 */
describe('load-time compile errors', () => {
  let t: TestServer;
  const execute = (body: unknown) => call<ExecutionResponse>(t.url, 'POST', '/execute', body);
  const RUNTIME_NOTE = 'the code was not run: the runtime could not compile it';

  beforeAll(async () => {
    // Profile `off`: the attacks below use gc and process internals, which other profiles reject.
    // Load-time errors of the runtime itself: TypeScript's checker (which would see some first) is off.
    t = await startTestServer({
      analysis: { profile: 'off' },
      languages: { typescript: { typecheck: false } },
    });
  });
  afterAll(async () => {
    await t?.close();
  });

  it.each([
    ['python', 'print("ran")\nfor i in range(2):\n    pass\nbreak\n', 4, "SyntaxError: 'break' outside loop"],
    [
      'python',
      'print("ran")\nnonlocal x\n',
      2,
      'SyntaxError: nonlocal declaration not allowed at module level',
    ],
    [
      'python',
      'print("ran")\ndef f():\n    x = 1\n    global x\n',
      4,
      "SyntaxError: name 'x' is assigned to before global declaration",
    ],
    [
      'javascript',
      'console.log("ran");\nlet a = 1;\nlet a = 2;\n',
      3,
      "SyntaxError: Identifier 'a' has already been declared",
    ],
    [
      'javascript',
      '"use strict";\nconsole.log("ran");\nvar n = 010;\n',
      3,
      'SyntaxError: Octal literals are not allowed in strict mode.',
    ],
    [
      'typescript',
      'console.log("ran");\nconst r = /(/;\nconsole.log(r);\n',
      2,
      'SyntaxError: Invalid regular expression: /(/: Unterminated group',
    ],
  ])(
    '%s refused by the runtime at load time: compile_error at its line, nothing ran',
    async (language, code, line, message) => {
      const res = await execute({ code, language });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        status: 'compile_error',
        success: false,
        output: '',
        has_security_violations: false,
      });
      expect(res.body.errors[0]).toMatch(new RegExp(`^does not compile: line ${line}, column \\d+: `));
      expect(res.body.errors[0]).toContain(message);
      expect(res.body.errors.join('\n')).toContain(RUNTIME_NOTE);
      expect(res.body.errors.join('\n')).not.toContain('WARDEN_COMPILE');
    },
  );

  it.each([
    [
      'export const a = 1;\nconsole.log("ran");\n  return 2;\n',
      3,
      3,
      'SyntaxError: Illegal return statement',
    ],
    [
      'import fs from "fs";\nconsole.log("ran", fs);\nlet a = 1;\n\tlet a = 2;\n',
      4,
      6,
      "SyntaxError: Identifier 'a' has already been declared",
    ],
  ])(
    'an ES module the runtime cannot compile is compile_error at its line and column: %j',
    async (code, line, column, message) => {
      const res = await execute({ code, language: 'javascript' });
      expect(res.body).toMatchObject({ status: 'compile_error', output: '', has_security_violations: false });
      expect(res.body.errors[0]!.split('\n')[0]).toBe(
        `does not compile: line ${line}, column ${column}: ${message}`,
      );
      expect(res.body.errors.join('\n')).not.toContain('WARDEN_COMPILE');
      expect(res.body.errors.join('\n')).not.toContain('file://');
    },
  );

  it.each([
    ['python', 'print("ran")\ncompile("(", "x", "exec")\n'],
    ['python', 'print("ran")\nexec("break")\n'],
    ['javascript', 'console.log("ran");\neval("(");\n'],
    ['javascript', 'console.log("ran");\nJSON.parse("{");\n'],
  ])('a SyntaxError %s raises while running is failed, not compile_error', async (language, code) => {
    const res = await execute({ code, language });
    expect(res.body.status).toBe('failed');
    expect(res.body.output).toBe('ran\n');
    expect(res.body.errors.join('\n')).toContain('SyntaxError');
  });

  it.each([
    [
      'python',
      [
        // Prints the report with every hex secret it can reach in the process's objects, then exits 1.
        'import gc, os, re, sys',
        'seen = {"0" * 32}',
        'for o in gc.get_objects():',
        '    items = o.values() if isinstance(o, dict) else o if isinstance(o, (list, tuple)) else ()',
        '    for v in list(items):',
        '        if isinstance(v, str) and re.fullmatch("[0-9a-f]{32}", v): seen.add(v)',
        'for n in seen:',
        '    os.write(2, ("\\0WARDEN_COMPILE " + n + \' {"line": 1, "column": 1, "message": "fake"}\\n\').encode())',
        'os._exit(1)',
      ].join('\n'),
    ],
    [
      'javascript',
      [
        'const fs = require("fs");',
        'const guesses = ["0".repeat(32), ...Object.keys(globalThis)];',
        'for (const n of guesses) fs.writeSync(2, `\\0WARDEN_COMPILE ${n} {"line":1,"column":1,"message":"fake"}\\n`);',
        'process.exit(1);',
      ].join('\n'),
    ],
    ['python', 'raise SyntaxError("invalid syntax")\n'],
  ])(
    '%s imitating the bootstrap’s report (same line, same exit status) stays failed',
    async (language, code) => {
      const res = await execute({ code, language });
      expect(res.body.status).toBe('failed');
      expect(res.body.errors.join('\n')).not.toContain(RUNTIME_NOTE);
    },
  );
});
