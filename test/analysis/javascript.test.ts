import { beforeAll, describe, expect, it } from 'vitest';
import { analyze, warmUp, type AnalysisLanguage } from '../../src/analysis/index.js';
import { expectClean, expectFindings, type Dangerous } from './helpers.js';

beforeAll(async () => {
  await warmUp();
});

// Every fixture here is valid JavaScript and valid TypeScript, so each runs under both grammars.
const modules: Dangerous[] = [
  {
    name: 'require child_process',
    code: 'const cp = require("child_process");\n',
    expect: [['import_process', 1]],
  },
  { name: 'node: prefix', code: 'require("node:child_process");\n', expect: [['import_process', 1]] },
  { name: 'default import', code: 'import cp from "child_process";\n', expect: [['import_process', 1]] },
  { name: 'namespace import', code: 'import * as net from "node:net";\n', expect: [['import_network', 1]] },
  {
    name: 'named import of exec',
    code: 'import { exec } from "child_process";\n',
    expect: [
      ['import_process', 1],
      ['process_spawn', 1],
    ],
  },
  { name: 'side-effect import', code: 'import "dgram";\n', expect: [['import_network', 1]] },
  { name: 'export from', code: 'export { exec } from "child_process";\n', expect: [['import_process', 1]] },
  { name: 'export * from', code: 'export * from "vm";\n', expect: [['import_dynamic_code', 1]] },
  {
    name: 'dynamic import literal',
    code: 'const m = await import("child_process");\n',
    expect: [['import_process', 1]],
  },
  { name: 'fs', code: 'const fs = require("fs");\n', expect: [['import_system', 1]] },
  {
    name: 'fs/promises',
    code: 'import { readFile } from "node:fs/promises";\n',
    expect: [['import_system', 1]],
  },
  {
    name: 'network modules',
    code: 'require("net");\nrequire("http");\nrequire("https");\nrequire("http2");\nrequire("dns");\nrequire("tls");\n',
    expect: [
      ['import_network', 1],
      ['import_network', 2],
      ['import_network', 3],
      ['import_network', 4],
      ['import_network', 5],
      ['import_network', 6],
    ],
  },
  {
    name: 'code-loading modules',
    code: 'require("vm");\nrequire("inspector");\nrequire("module");\n',
    expect: [
      ['import_dynamic_code', 1],
      ['import_dynamic_code', 2],
      ['import_dynamic_code', 3],
    ],
  },
  {
    name: 'system modules',
    code: 'require("worker_threads");\nrequire("v8");\nrequire("os");\n',
    expect: [
      ['import_system', 1],
      ['import_system', 2],
      ['import_system', 3],
    ],
  },
  { name: 'cluster', code: 'import cluster from "cluster";\n', expect: [['import_process', 1]] },
  { name: 'require with a variable', code: 'const m = require(name);\n', expect: [['dynamic_import', 1]] },
  {
    name: 'import() with a variable',
    code: 'const m = await import(name);\n',
    expect: [['dynamic_import', 1]],
  },
  {
    name: 'require of concatenated literals',
    code: 'require("child" + "_process");\n',
    expect: [['import_process', 1]],
  },
  { name: 'require with escapes', code: 'require("child\\x5fprocess");\n', expect: [['import_process', 1]] },
  {
    name: 'require with a template literal',
    code: 'require(`child_process`);\n',
    expect: [['import_process', 1]],
  },
  {
    name: 'aliased require',
    code: 'const r = require;\nr(name);\n',
    expect: [
      ['dynamic_import', 1],
      ['dynamic_import', 2],
    ],
  },
  { name: 'require.call', code: 'require.call(null, "child_process");\n', expect: [['dynamic_import', 1]] },
  { name: 'require in an array', code: '[require][0]("child_process");\n', expect: [['dynamic_import', 1]] },
  {
    name: 'process.getBuiltinModule',
    code: 'process.getBuiltinModule("child_process").execSync("id");\n',
    expect: [
      ['import_process', 1],
      ['process_spawn', 1],
    ],
  },
  {
    name: 'destructured dynamic import',
    code: 'const { exec } = await import("child_process");\nexec("id");\n',
    expect: [
      ['import_process', 1],
      ['process_spawn', 2],
    ],
  },
  {
    name: 'long alias chain',
    code:
      'const a0 = require("child_process");\n' +
      Array.from({ length: 20 }, (_, i) => `const a${i + 1} = a${i};\n`).join('') +
      'a20.exec("id");\n',
    expect: [['process_spawn', 22]],
  },
  {
    name: 'deeply parenthesised module',
    code:
      'const cp = require("child_process");\n' + '('.repeat(80) + 'cp' + ')'.repeat(80) + '.exec("id");\n',
    expect: [['process_spawn', 2]],
  },
  {
    name: 'process.mainModule.require',
    code: 'process.mainModule.require("child_process");\n',
    expect: [
      ['process_internals', 1],
      ['import_process', 1],
    ],
  },
];

const code: Dangerous[] = [
  { name: 'eval', code: 'eval("1 + 1");\n', expect: [['dynamic_code', 1]] },
  {
    name: 'eval alias',
    code: 'const e = eval;\ne("x");\n',
    expect: [
      ['dynamic_code', 1],
      ['dynamic_code', 2],
    ],
  },
  { name: 'indirect eval', code: '(0, eval)("x");\n', expect: [['dynamic_code', 1]] },
  { name: 'globalThis.eval', code: 'globalThis.eval("x");\n', expect: [['dynamic_code', 1]] },
  { name: 'globalThis["eval"]', code: 'globalThis["eval"]("x");\n', expect: [['dynamic_code', 1]] },
  { name: 'unicode-escaped eval', code: '\\u0065val("x");\n', expect: [['dynamic_code', 1]] },
  { name: '{ eval } shorthand', code: 'const o = { eval };\no.eval("x");\n', expect: [['dynamic_code', 1]] },
  { name: 'Function()', code: 'Function("return this")();\n', expect: [['dynamic_code', 1]] },
  {
    name: 'new Function()',
    code: 'const f = new Function("a", "return a");\n',
    expect: [['dynamic_code', 1]],
  },
  {
    name: 'constructor.constructor',
    code: 'const f = "".constructor.constructor("return process")();\n',
    expect: [
      ['constructor_escape', 1],
      ['dynamic_code', 1],
    ],
  },
  {
    name: 'constructor["constructor"]',
    code: '[].constructor["constructor"]("x");\n',
    expect: [['constructor_escape', 1]],
  },
  {
    name: 'async function constructor',
    code: 'const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;\nObject.getPrototypeOf(async () => {}).constructor("code");\n',
    expect: [['dynamic_code', 2]],
  },
  {
    name: 'setTimeout with a string',
    code: 'setTimeout("alert(1)", 100);\n',
    expect: [['timer_string_code', 1]],
  },
  {
    name: 'setInterval with a template',
    code: 'setInterval(`tick()`, 10);\n',
    expect: [['timer_string_code', 1]],
  },
  {
    name: 'vm.runInNewContext',
    code: 'const vm = require("vm");\nvm.runInNewContext("this.constructor");\n',
    expect: [['dynamic_code', 2]],
  },
];

const processAccess: Dangerous[] = [
  { name: 'process.env', code: 'const key = process.env.SECRET;\n', expect: [['environment_access', 1]] },
  {
    name: 'destructured env',
    code: 'const { env } = process;\nconsole.log(env.HOME);\n',
    expect: [['environment_access', 2]],
  },
  { name: 'process.exit', code: 'process.exit(1);\n', expect: [['process_exit', 1]] },
  { name: 'process.abort', code: 'process.abort();\n', expect: [['process_exit', 1]] },
  { name: 'process.kill', code: 'process.kill(process.pid, "SIGKILL");\n', expect: [['process_signal', 1]] },
  { name: 'process.binding', code: 'process.binding("spawn_sync");\n', expect: [['process_internals', 1]] },
  {
    name: 'process._linkedBinding',
    code: 'process._linkedBinding("x");\n',
    expect: [['process_internals', 1]],
  },
  { name: 'process.dlopen', code: 'process.dlopen(m, "x.node");\n', expect: [['process_internals', 1]] },
  {
    name: 'globalThis.process.env',
    code: 'globalThis.process.env.X;\n',
    expect: [['environment_access', 1]],
  },
  {
    name: 'child_process.exec via alias',
    code: 'const cp = require("child_process");\ncp.exec("ls");\n',
    expect: [['process_spawn', 2]],
  },
  {
    name: 'destructured execSync with rename',
    code: 'const { execSync: run } = require("node:child_process");\nrun("id");\n',
    expect: [['process_spawn', 2]],
  },
  {
    name: 'require(...).spawn chain',
    code: 'require("child_process").spawn("sh");\n',
    expect: [['process_spawn', 1]],
  },
  { name: 'fetch', code: 'fetch("https://example.com");\n', expect: [['network_access', 1]] },
  { name: 'WebSocket', code: 'new WebSocket("ws://x");\n', expect: [['network_access', 1]] },
];

const dynamicAccess: Dangerous[] = [
  { name: 'globalThis[name]', code: 'const f = globalThis[name];\n', expect: [['global_dynamic_access', 1]] },
  { name: 'global[k]()', code: 'global[k]();\n', expect: [['global_dynamic_access', 1]] },
  {
    name: 'globalThis["ev" + "al"]',
    code: 'globalThis["ev" + "al"]("x");\n',
    expect: [
      ['global_dynamic_access', 1],
      ['dynamic_code', 1],
    ],
  },
  { name: 'process[key]', code: 'process[key];\n', expect: [['global_dynamic_access', 1]] },
  {
    name: 'module[method]',
    code: 'const cp = require("child_process");\ncp[m]("ls");\n',
    expect: [['global_dynamic_access', 2]],
  },
  {
    name: 'Reflect.get(globalThis, k)',
    code: 'Reflect.get(globalThis, k)("x");\n',
    expect: [['global_dynamic_access', 1]],
  },
  {
    name: 'aliased global',
    code: 'const g = globalThis;\ng[k]();\n',
    expect: [['global_dynamic_access', 2]],
  },
];

const pollution: Dangerous[] = [
  { name: 'x.__proto__.y =', code: 'obj.__proto__.isAdmin = true;\n', expect: [['prototype_pollution', 1]] },
  {
    name: 'x["__proto__"]',
    code: 'obj["__proto__"]["isAdmin"] = true;\n',
    expect: [['prototype_pollution', 1]],
  },
  { name: 'x.__proto__ =', code: 'obj.__proto__ = evil;\n', expect: [['prototype_pollution', 1]] },
  {
    name: 'constructor.prototype',
    code: 'obj.constructor.prototype.isAdmin = true;\n',
    expect: [['prototype_pollution', 1]],
  },
  {
    name: 'Object.prototype.x =',
    code: 'Object.prototype.isAdmin = true;\n',
    expect: [['prototype_pollution', 1]],
  },
  {
    name: 'Array.prototype.map =',
    code: 'Array.prototype.map = null;\n',
    expect: [['prototype_pollution', 1]],
  },
  {
    name: 'compound assignment',
    code: 'Object.prototype.count += 1;\n',
    expect: [['prototype_pollution', 1]],
  },
  {
    name: 'Object.defineProperty(Object.prototype)',
    code: 'Object.defineProperty(Object.prototype, "x", { value: 1 });\n',
    expect: [['prototype_pollution', 1]],
  },
  {
    name: 'Object.assign(Object.prototype)',
    code: 'Object.assign(Object.prototype, { x: 1 });\n',
    expect: [['prototype_pollution', 1]],
  },
  {
    name: 'alias of Object.prototype',
    code: 'const P = Object.prototype;\nP.x = 1;\n',
    expect: [['prototype_pollution', 2]],
  },
];

const loops: Dangerous[] = [
  { name: 'while (true) {}', code: 'while (true) {}\n', expect: [['infinite_loop', 1]] },
  { name: 'while (1)', code: 'let i = 0;\nwhile (1) { i++; }\n', expect: [['infinite_loop', 2]] },
  { name: 'while (!0)', code: 'while (!0) {}\n', expect: [['infinite_loop', 1]] },
  { name: 'for (;;)', code: 'for (;;) {}\n', expect: [['infinite_loop', 1]] },
  { name: 'for (;true;)', code: 'for (let i = 0; true; i++) {}\n', expect: [['infinite_loop', 1]] },
  { name: 'do {} while (true)', code: 'do {\n  work();\n} while (true);\n', expect: [['infinite_loop', 1]] },
  {
    name: 'break only in an inner loop',
    code: 'for (;;) {\n  for (const x of xs) { break; }\n}\n',
    expect: [['infinite_loop', 1]],
  },
  {
    name: 'break only in a switch',
    code: 'while (true) {\n  switch (x) { case 1: break; }\n}\n',
    expect: [['infinite_loop', 1]],
  },
  {
    name: 'return only in a nested function',
    code: 'while (true) {\n  const f = () => { return 1; };\n}\n',
    expect: [['infinite_loop', 1]],
  },
  {
    name: 'constant flag never reset',
    code: 'let running = true;\nwhile (running) { step(); }\n',
    expect: [['infinite_loop', 2]],
  },
];

const sizes: Dangerous[] = [
  { name: 'new Array(1e9)', code: 'const a = new Array(1e9);\n', expect: [['huge_allocation', 1]] },
  { name: 'Array(10 ** 9)', code: 'const a = Array(10 ** 9).fill(0);\n', expect: [['huge_allocation', 1]] },
  { name: '"x".repeat(N)', code: 'const s = "x".repeat(1_000_000_000);\n', expect: [['huge_allocation', 1]] },
  { name: 'padStart', code: 'const s = "a".padStart(1e9);\n', expect: [['huge_allocation', 1]] },
  { name: 'Buffer.alloc', code: 'const b = Buffer.alloc(2 ** 31);\n', expect: [['huge_allocation', 1]] },
  { name: 'typed array', code: 'const b = new Uint8Array(1e10);\n', expect: [['huge_allocation', 1]] },
  {
    name: 'Array.from({ length })',
    code: 'Array.from({ length: 1e9 });\n',
    expect: [['huge_allocation', 1]],
  },
  {
    name: 'size from a constant',
    code: 'const N = 1e9;\nconst a = new Array(N);\n',
    expect: [['huge_allocation', 2]],
  },
  { name: 'Math.pow', code: 'new Array(Math.pow(10, 9));\n', expect: [['huge_allocation', 1]] },
];

const files: Dangerous[] = [
  {
    name: 'fs.readFileSync("/etc/passwd")',
    code: 'const fs = require("fs");\nfs.readFileSync("/etc/passwd", "utf8");\n',
    expect: [['file_access', 2]],
  },
  {
    name: 'named import with ..',
    code: 'import { readFileSync } from "fs";\nreadFileSync("../../secret");\n',
    expect: [['file_access', 2]],
  },
  {
    name: 'fs.promises',
    code: 'import fs from "fs";\nawait fs.promises.readFile("/etc/shadow");\n',
    expect: [['file_access', 2]],
  },
  {
    name: 'fs/promises writeFile',
    code: 'import { writeFile } from "fs/promises";\nawait writeFile("/root/x", "y");\n',
    expect: [['file_access', 2]],
  },
  {
    name: 'computed path',
    code: 'const fs = require("fs");\nfs.readFileSync(p);\n',
    expect: [['file_access_dynamic', 2]],
  },
];

const groups = { modules, code, processAccess, dynamicAccess, pollution, loops, sizes, files };

for (const language of ['javascript', 'typescript'] as const) {
  describe(`${language}: dangerous code is reported with the right rule and line`, () => {
    for (const [group, fixtures] of Object.entries(groups)) {
      describe(group, () => {
        for (const f of fixtures) {
          it(f.name, async () => {
            await expectFindings(f.code, language, f.expect);
          });
        }
      });
    }
  });
}

describe('with statement', () => {
  it('is reported in JavaScript', async () => {
    await expectFindings('with (obj) {\n  a = 1;\n}\n', 'javascript', [['with_statement', 1]]);
  });
});

describe('typescript-only syntax', () => {
  const ts: Dangerous[] = [
    {
      name: 'import = require',
      code: 'import cp = require("child_process");\n',
      expect: [['import_process', 1]],
    },
    {
      name: 'through as-casts',
      code: 'const g = (globalThis as any)[key as string];\n',
      expect: [['global_dynamic_access', 1]],
    },
    {
      name: 'non-null assertion',
      code: 'const e = process!.env!.HOME;\n',
      expect: [['environment_access', 1]],
    },
    {
      name: 'typed eval alias',
      code: 'const run: (s: string) => unknown = eval;\nrun("x");\n',
      expect: [
        ['dynamic_code', 1],
        ['dynamic_code', 2],
      ],
    },
  ];
  for (const f of ts) {
    it(f.name, async () => {
      await expectFindings(f.code, 'typescript', f.expect);
    });
  }

  it('type-only imports load nothing', async () => {
    await expectClean('import type { Stats } from "fs";\nexport type { Dirent } from "fs";\n', 'typescript');
  });

  it('the Function type is not the Function constructor', async () => {
    await expectClean('let f: Function = () => 1;\nf();\n', 'typescript');
  });

  it('TypeScript syntax is a syntax error for the JavaScript grammar', async () => {
    const report = await analyze('let x: number = 1;\n', 'javascript');
    expect(report.findings.map((f) => f.rule)).toContain('syntax_error');
  });
});

const benign: [string, string][] = [
  ['a function named system', 'function system() { return 1; }\nsystem();\n'],
  ['a variable named eval_score', 'const eval_score = 3;\nconsole.log(eval_score);\n'],
  ['"require(fs)" in a string', 'const s = "require(\'fs\')";\nconst t = `import os`;\n'],
  ['a comment', '// require("child_process")\n/* eval("x") */\nconst x = 1;\n'],
  ['os and fs as object keys', 'const o = { os: 1, fs: 2, eval: 3 };\nconsole.log(o.os, o.fs);\n'],
  ['JSON.parse', 'const v = JSON.parse("{}");\n'],
  ['RegExp exec', 'const re = /a+/;\nconst m = re.exec(s);\n/b/.exec(s);\n'],
  ['a user method named exec', 'class Q { exec() { return 1; } }\nnew Q().exec();\n'],
  ['for (;;) with break', 'for (;;) {\n  if (x) break;\n}\n'],
  ['while (true) with return', 'function f() {\n  while (true) {\n    if (g()) return 1;\n  }\n}\n'],
  ['while (true) with throw', 'while (true) {\n  throw new Error("x");\n}\n'],
  ['labelled break out of an inner loop', 'outer: for (;;) {\n  for (const x of xs) { break outer; }\n}\n'],
  ['a generator loop', 'function* g() {\n  while (true) {\n    yield 1;\n  }\n}\n'],
  ['flag that is reset', 'let running = true;\nwhile (running) {\n  running = false;\n}\n'],
  ['instanceof Function', 'if (x instanceof Function) {}\n'],
  [
    'user-class prototypes',
    'function Foo() {}\nFoo.prototype.bar = function () {};\nChild.prototype = Object.create(Parent.prototype);\n',
  ],
  ['reading Object.prototype', 'const has = Object.prototype.hasOwnProperty.call(o, "k");\n'],
  ['ordinary indexing', 'const a = arr[i] + obj[key];\nconst self = this;\nself[key] = 1;\n'],
  ['reasonable sizes', 'new Array(10);\n"-".repeat(80);\nBuffer.alloc(1024);\n'],
  ['setTimeout with a function', 'setTimeout(() => tick(), 10);\n'],
  [
    'harmless modules',
    'import path from "path";\nimport { readFile } from "./fs.js";\nconst u = require("util");\n',
  ],
  ['a user function named fetch', 'function fetch(url) { return url; }\nfetch("x");\n'],
  ['Object.assign to a new object', 'const o = Object.assign({}, defaults, opts);\n'],
  ['cloning with constructor', 'const copy = new this.constructor();\n'],
  ['Function.prototype helpers', 'const call = Function.prototype.call.bind(Array.prototype.slice);\n'],
  [
    'ordinary require uses',
    'if (require.main === module) {\n  console.log(require.resolve("./x"), typeof require);\n}\n',
  ],
];

for (const language of ['javascript', 'typescript'] as const satisfies readonly AnalysisLanguage[]) {
  describe(`${language}: benign look-alikes are not reported`, () => {
    for (const [name, snippet] of benign) {
      it(name, async () => {
        await expectClean(snippet, language);
      });
    }

    it('process.exit ends a while (true) loop (only the exit itself is reported)', async () => {
      await expectClean('while (true) {\n  process.exit(0);\n}\n', language, ['process_exit']);
    });

    it('standard streams and /tmp are allowed for fs', async () => {
      await expectClean(
        'const fs = require("fs");\nfs.readFileSync("/dev/stdin", "utf8");\nfs.readFileSync(0);\nfs.writeFileSync("/tmp/out.txt", "x");\nfs.readFileSync("data.txt");\n',
        language,
        ['import_system'],
      );
    });
  });
}

describe('javascript: positions', () => {
  it('reports 1-based line and column of the construct', async () => {
    const report = await analyze('const a = 1;\n\nfunction f() {\n  return eval(a);\n}\n', 'javascript');
    expect(report.findings).toHaveLength(1);
    expect(report.findings[0]).toMatchObject({
      rule: 'dynamic_code',
      line: 4,
      column: 10,
      severity: 'critical',
    });
  });
});
