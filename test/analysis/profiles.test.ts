import { beforeAll, describe, expect, it } from 'vitest';
import {
  analyze,
  ruleAction,
  RULES,
  warmUp,
  type AnalysisLanguage,
  type AnalysisProfile,
  type Finding,
} from '../../src/analysis/index.js';

beforeAll(async () => {
  await warmUp();
});

function show(findings: Finding[]): string {
  return findings.map((f) => `  ${f.line}:${f.column} ${f.severity} ${f.rule}`).join('\n') || '(none)';
}

describe('profiles decide what rejects', () => {
  // The modules issue 13 and seed 004 name: importing one rejects under strict.
  const dangerous: [AnalysisLanguage, string][] = [
    ...[
      'os',
      'subprocess',
      'socket',
      'ctypes',
      'multiprocessing',
      '_thread',
      'pty',
      'signal',
      'shutil',
      'urllib.request',
      'http.client',
      'ftplib',
      'telnetlib',
      'smtplib',
      'requests',
      'pickle',
      'marshal',
      'shelve',
      'dill',
      'importlib',
    ].map((m): [AnalysisLanguage, string] => ['python', `import ${m}\n`]),
    ...[
      'child_process',
      'fs',
      'net',
      'http',
      'https',
      'dgram',
      'dns',
      'tls',
      'vm',
      'worker_threads',
      'cluster',
      'inspector',
      'v8',
      'module',
      'node:fs',
      'node:child_process',
    ].flatMap((m): [AnalysisLanguage, string][] => [
      ['javascript', `const m = require('${m}');\n`],
      ['typescript', `import * as m from '${m}';\n`],
    ]),
  ];

  for (const [language, code] of dangerous) {
    it(`strict rejects ${language} ${code.trim()}; off never does`, async () => {
      const strict = await analyze(code, language);
      expect(strict.safe, show(strict.findings)).toBe(false);
      expect(strict.rejected.every((f) => f.rule.startsWith('import_'))).toBe(true);
      const off = await analyze(code, language, { profile: 'off' });
      expect(off.safe).toBe(true);
      expect(off.findings).toEqual(strict.findings);
    });
  }

  it('standard lets an import alone through but rejects a dangerous use', async () => {
    expect((await analyze('import os\n', 'python', { profile: 'standard' })).safe).toBe(true);
    expect((await analyze('const fs = require("fs");\n', 'javascript', { profile: 'standard' })).safe).toBe(
      true,
    );
    const use = await analyze('import os\nos.system("id")\n', 'python', { profile: 'standard' });
    expect(use.rejected.map((f) => [f.rule, f.line, f.column])).toEqual([['process_spawn', 2, 4]]);
  });

  it('off reports every finding and rejects none', async () => {
    const report = await analyze('import os\nos.system("id")\neval("1")\n', 'python', { profile: 'off' });
    expect(report.findings.map((f) => f.rule)).toEqual(['import_system', 'process_spawn', 'dynamic_code']);
    expect(report).toMatchObject({ safe: true, rejected: [] });
  });

  it('rejectAt still moves the severity threshold under strict and standard', async () => {
    const code = 'import threading\n';
    expect((await analyze(code, 'python', { rejectAt: 'low' })).safe).toBe(false);
    expect((await analyze(code, 'python', { profile: 'standard', rejectAt: 'low' })).safe).toBe(false);
    // strict's import rule holds even with the threshold at critical.
    expect((await analyze('import os\n', 'python', { rejectAt: 'critical' })).safe).toBe(false);
  });

  it('ruleAction agrees with analyze for every rule and profile', () => {
    const profiles: AnalysisProfile[] = ['strict', 'standard', 'off'];
    for (const rule of RULES) {
      for (const profile of profiles) {
        const action = ruleAction(rule.id, rule.severity, { profile, rejectAt: 'high' });
        const expected =
          profile === 'off'
            ? 'warn'
            : (profile === 'strict' &&
                  [
                    'import_process',
                    'import_native_code',
                    'import_dynamic_code',
                    'import_system',
                    'import_network',
                  ].includes(rule.id)) ||
                rule.severity === 'high' ||
                rule.severity === 'critical'
              ? 'reject'
              : 'warn';
        expect([rule.id, profile, action]).toEqual([rule.id, profile, expected]);
      }
    }
  });
});

type Case = [
  name: string,
  language: AnalysisLanguage,
  code: string,
  rule: string,
  line: number,
  column: number,
];

/** Each case must be found at its position and must reject under both strict and standard. */
function rejectsAsUse(cases: Case[]): void {
  for (const [name, language, code, rule, line, column] of cases) {
    it(`${language}: ${name} → ${rule} at ${line}:${column}`, async () => {
      for (const profile of ['strict', 'standard'] as const) {
        const report = await analyze(code, language, { profile });
        const hit = report.rejected.find((f) => f.rule === rule && f.line === line && f.column === column);
        expect(hit, `${profile}:\n${code}\nfound:\n${show(report.findings)}`).toBeDefined();
      }
    });
  }
}

describe('the false negatives of issue 13 reject as uses', () => {
  rejectsAsUse([
    [
      'socket connect',
      'python',
      'import socket\nh = "x"\nsocket.socket().connect((h, 80))\n',
      'network_connect',
      3,
      8,
    ],
    ['net.connect', 'javascript', "require('net').connect(80, h);\n", 'network_connect', 1, 16],
    [
      'multiprocessing.Process',
      'python',
      'import multiprocessing\nmultiprocessing.Process(target=f).start()\n',
      'thread_spawn',
      2,
      17,
    ],
    [
      'new Worker eval',
      'javascript',
      "const { Worker } = require('worker_threads');\nnew Worker(src, { eval: true });\n",
      'thread_spawn',
      2,
      5,
    ],
    [
      'urlopen file://',
      'python',
      "import urllib.request\nurllib.request.urlopen('file:///etc/passwd')\n",
      'network_connect',
      2,
      16,
    ],
    ['ftplib.FTP', 'python', "import ftplib\nftplib.FTP('h')\n", 'network_connect', 2, 8],
    ['telnetlib.Telnet', 'python', "from telnetlib import Telnet\nTelnet('h')\n", 'network_connect', 2, 1],
    [
      'JSON.stringify(process.env)',
      'javascript',
      'JSON.stringify(process.env);\n',
      'environment_dump',
      1,
      24,
    ],
    [
      'module.constructor._load',
      'javascript',
      "module.constructor._load('child_process').execSync('id');\n",
      'module_loader',
      1,
      20,
    ],
    [
      'module.constructor._load → execSync',
      'javascript',
      "module.constructor._load('child_process').execSync('id');\n",
      'process_spawn',
      1,
      43,
    ],
    ['print(os.environ)', 'python', 'import os\nprint(os.environ)\n', 'environment_dump', 2, 10],
    [
      'for k in os.environ',
      'python',
      'import os\nfor k in os.environ:\n    pass\n',
      'environment_dump',
      2,
      13,
    ],
    ['os.environ.copy()', 'python', 'import os\ne = os.environ.copy()\n', 'environment_dump', 2, 8],
    ['{ ...process.env }', 'typescript', 'const e = { ...process.env };\n', 'environment_dump', 1, 24],
    ['http.get', 'typescript', 'import * as http from "http";\nhttp.get(u);\n', 'network_connect', 2, 6],
    ['cluster.fork', 'javascript', 'require("cluster").fork();\n', 'thread_spawn', 1, 20],
    [
      '_thread.start_new_thread',
      'python',
      'import _thread\n_thread.start_new_thread(f, ())\n',
      'thread_spawn',
      2,
      9,
    ],
    [
      'threading.Thread',
      'python',
      'import threading\nthreading.Thread(target=f).start()\n',
      'thread_spawn',
      2,
      11,
    ],
    ['requests.get', 'python', 'import requests\nrequests.get(u)\n', 'network_connect', 2, 10],
  ]);
});

describe('evasions', () => {
  rejectsAsUse([
    [
      'Object.getOwnPropertyDescriptor(process, …)',
      'javascript',
      "Object.getOwnPropertyDescriptor(process, 'mainModule').get();\n",
      'process_internals',
      1,
      1,
    ],
    ['fetch', 'javascript', "fetch('http://example.com');\n", 'network_access', 1, 1],
    [
      'import() of a computed name',
      'typescript',
      'export const load = (name: string) => import(name);\n',
      'dynamic_import',
      1,
      39,
    ],
    [
      'frame builtins',
      'python',
      "import sys\nsys._getframe(0).f_builtins['eval']('1')\n",
      'introspection_escape',
      2,
      18,
    ],
    ['__builtins__.__dict__[…]', 'python', "__builtins__.__dict__['eval']('1')\n", 'dynamic_code', 1, 23],
    [
      'builtins.__dict__[…]',
      'python',
      "import builtins\nbuiltins.__dict__['exec']('1')\n",
      'dynamic_code',
      2,
      19,
    ],
    ['pydoc.pipepager', 'python', "import pydoc\npydoc.pipepager('x', 'id')\n", 'process_spawn', 2, 7],
    [
      'multiprocessing.connection.Client',
      'python',
      "from multiprocessing.connection import Client\nClient(('h', 1))\n",
      'network_connect',
      2,
      1,
    ],
    [
      'module.require',
      'javascript',
      "module.require('child_process').execSync('id');\n",
      'module_loader',
      1,
      8,
    ],
    [
      'require.main.require',
      'javascript',
      "require.main.require('child_process').execSync('id');\n",
      'module_loader',
      1,
      14,
    ],
    [
      'process.mainModule',
      'javascript',
      "process.mainModule.require('child_process');\n",
      'process_internals',
      1,
      9,
    ],
    ['process.binding', 'javascript', "process.binding('spawn_sync');\n", 'process_internals', 1, 9],
    ['process._linkedBinding', 'javascript', "process._linkedBinding('x');\n", 'process_internals', 1, 9],
    ['process.dlopen', 'javascript', "process.dlopen(m, '/x.node');\n", 'process_internals', 1, 9],
    [
      'Module._load',
      'javascript',
      "const Module = require('module');\nModule._load('fs');\n",
      'module_loader',
      2,
      8,
    ],
    [
      'createRequire',
      'typescript',
      "import { createRequire } from 'module';\nconst r = createRequire(import.meta.url);\n",
      'module_loader',
      2,
      11,
    ],
    ['require.cache', 'javascript', 'delete require.cache[x];\n', 'module_loader', 1, 16],
    [
      'globalThis[computed]',
      'javascript',
      "const k = 'ev' + 'al';\nglobalThis[k]('1');\n",
      'dynamic_code',
      2,
      12,
    ],
    [
      'this.constructor.constructor',
      'javascript',
      "this.constructor.constructor('return process')();\n",
      'constructor_escape',
      1,
      18,
    ],
    [
      'Reflect.get(process, …)',
      'javascript',
      "Reflect.get(process, 'mainModule');\n",
      'process_internals',
      1,
      1,
    ],
    [
      'Function.prototype.call.call(eval)',
      'javascript',
      "Function.prototype.call.call(eval, null, '1');\n",
      'dynamic_code',
      1,
      30,
    ],
    [
      'Function.prototype.call.call(require)',
      'javascript',
      "Function.prototype.call.call(require, null, 'child_process');\n",
      'dynamic_import',
      1,
      30,
    ],
    [
      'import() of a folded name',
      'javascript',
      "const m = 'child_' + 'process';\nawait import(m);\n",
      'import_process',
      2,
      14,
    ],
    ['vars()["__builtins__"]', 'python', "b = vars()['__builtins__']\n", 'introspection_escape', 1, 12],
    [
      'globals()["__builtins__"]',
      'python',
      "globals()['__builtins__'].__import__('os')\n",
      'introspection_escape',
      1,
      11,
    ],
    [
      'sys._getframe',
      'python',
      "import sys\nsys._getframe().f_globals['os']\n",
      'introspection_escape',
      2,
      17,
    ],
    [
      'inspect.currentframe',
      'python',
      'import inspect\ninspect.currentframe()\n',
      'introspection_escape',
      2,
      9,
    ],
    [
      'getattr chain on a module',
      'python',
      "import importlib\ngetattr(getattr(importlib, 'import_module')('os'), 'system')('id')\n",
      'dynamic_import',
      2,
      9,
    ],
    [
      'getattr with a built name',
      'python',
      "import os\ngetattr(os, 'sys' + 'tem')('id')\n",
      'process_spawn',
      2,
      1,
    ],
    ['__loader__', 'python', "__loader__.load_module('os')\n", 'introspection_escape', 1, 1],
    ['sys.modules[…]', 'python', "import sys\nsys.modules['os'].system('id')\n", 'process_spawn', 2, 19],
    [
      'importlib.util.find_spec',
      'python',
      "import importlib.util\nimportlib.util.find_spec('os')\n",
      'dynamic_import',
      2,
      16,
    ],
    [
      'exec of a compile() object',
      'python',
      "c = compile('import os', 'x', 'exec')\nexec(c)\n",
      'dynamic_code',
      1,
      5,
    ],
    [
      'exec of base64',
      'python',
      "import base64\nexec(base64.b64decode('aW1wb3J0IG9z'))\n",
      'dynamic_code',
      2,
      1,
    ],
    [
      'eval of codecs',
      'python',
      "import codecs\neval(codecs.decode('vzcbeg bf', 'rot13'))\n",
      'dynamic_code',
      2,
      1,
    ],
    ['lambda default eval', 'python', 'f = lambda x, e=eval: e(x)\n', 'dynamic_code', 1, 17],
    [
      'lambda default os.system',
      'python',
      'import os\nf = lambda c, s=os.system: s(c)\n',
      'process_spawn',
      2,
      20,
    ],
    [
      'operator.attrgetter',
      'python',
      "import operator, os\noperator.attrgetter('system')(os)('id')\n",
      'dynamic_attribute',
      2,
      21,
    ],
    [
      'operator.methodcaller',
      'python',
      "import operator\noperator.methodcaller('__subclasses__')(c)\n",
      'introspection_escape',
      2,
      23,
    ],
    ['join → __import__', 'python', "__import__(''.join(['o', 's'])).system('id')\n", 'dynamic_import', 1, 1],
    ['format → __import__', 'python', "m = '{}{}'.format('o', 's')\n__import__(m)\n", 'dynamic_import', 2, 1],
    ['% → __import__', 'python', "m = '%s%s' % ('o', 's')\n__import__(m)\n", 'dynamic_import', 2, 1],
    ['f-string → __import__', 'python', "a = 'o'\nm = f'{a}s'\n__import__(m)\n", 'dynamic_import', 3, 1],
    ['chr() sum → __import__', 'python', 'm = chr(111) + chr(115)\n__import__(m)\n', 'dynamic_import', 2, 1],
    ['bytes.decode → __import__', 'python', "m = b'os'.decode()\n__import__(m)\n", 'dynamic_import', 2, 1],
    [
      'getattr(__builtins__, built)',
      'python',
      "getattr(__builtins__, 'ev' + 'al')('1')\n",
      'dynamic_code',
      1,
      1,
    ],
  ]);
});

describe('encoded payloads and environment aliases', () => {
  rejectsAsUse([
    [
      'exec(base64.b64decode(…))',
      'python',
      "import base64\nexec(base64.b64decode('aW1wb3J0IG9zCm9zLnN5c3RlbSgiaWQiKQ=='))\n",
      'encoded_payload',
      2,
      6,
    ],
    [
      "exec(codecs.decode(…, 'rot13'))",
      'python',
      "import codecs\nexec(codecs.decode('vzcbeg bf', 'rot13'))\n",
      'encoded_payload',
      2,
      6,
    ],
    [
      'exec(bytes.fromhex(…).decode())',
      'python',
      "exec(bytes.fromhex('7072696e74283129').decode())\n",
      'encoded_payload',
      1,
      6,
    ],
    [
      'exec(binascii.unhexlify(…))',
      'python',
      "import binascii\nexec(binascii.unhexlify('7072696e74283129'), {})\n",
      'encoded_payload',
      2,
      6,
    ],
    [
      'eval of an aliased b64decode',
      'python',
      "from base64 import b64decode as d\neval(d('MSsx'))\n",
      'encoded_payload',
      2,
      6,
    ],
    [
      '__import__ of a rot13 name',
      'python',
      "import codecs\n__import__(codecs.decode('bf', 'rot13')).system('id')\n",
      'process_spawn',
      2,
      42,
    ],
    [
      '__import__ of a hex name',
      'python',
      "__import__(bytes.fromhex('6f73').decode()).system('id')\n",
      'process_spawn',
      1,
      44,
    ],
    [
      'eval(atob(…))',
      'javascript',
      "eval(atob('cmVxdWlyZSgiY2hpbGRfcHJvY2VzcyIp'));\n",
      'encoded_payload',
      1,
      6,
    ],
    [
      "eval(Buffer.from(…, 'base64').toString())",
      'javascript',
      "eval(Buffer.from('cmVxdWlyZSgiY2hpbGRfcHJvY2VzcyIp', 'base64').toString());\n",
      'encoded_payload',
      1,
      6,
    ],
    [
      "new Function(Buffer.from(…, 'hex').toString())",
      'typescript',
      "new Function(Buffer.from('72657475726e2031', 'hex').toString('utf8'))();\n",
      'encoded_payload',
      1,
      14,
    ],
    [
      'vm.runInThisContext of a decoded constant',
      'javascript',
      "const p = atob('cHJvY2Vzcy5leGl0KCk=');\nconst vm = require('vm');\nvm.runInThisContext(p);\n",
      'encoded_payload',
      3,
      21,
    ],
    ['eval of an aliased atob', 'javascript', "const d = atob;\neval(d('MSsx'));\n", 'encoded_payload', 2, 6],
    [
      'require of a base64 name',
      'javascript',
      "require(atob('Y2hpbGRfcHJvY2Vzcw==')).execSync('id');\n",
      'process_spawn',
      1,
      39,
    ],
    [
      'dict() of an environ alias',
      'python',
      'import os\ne = os.environ\nprint(dict(e))\n',
      'environment_dump',
      3,
      12,
    ],
    [
      'iterating an imported environ',
      'python',
      'from os import environ as E\nfor k in E:\n    pass\n',
      'environment_dump',
      2,
      10,
    ],
    [
      'const { env } = process',
      'javascript',
      'const { env } = process;\nJSON.stringify(env);\n',
      'environment_dump',
      2,
      16,
    ],
    [
      'Object.entries(process.env)',
      'javascript',
      'Object.entries(process.env);\n',
      'environment_dump',
      1,
      24,
    ],
    [
      'an alias of process.env',
      'typescript',
      'const e = process.env;\nconsole.log(e);\n',
      'environment_dump',
      2,
      13,
    ],
  ]);
});

// The walker finds identifiers by scanning the source's words and confirming each in the tree;
// these are the places a word scan could miss one.
describe('identifiers are found wherever they stand', () => {
  rejectsAsUse([
    ['inside an f-string', 'python', 'x = f"{eval(\'1\')}"\n', 'dynamic_code', 1, 8],
    [
      'spelt in astral letters (NFKC)',
      'python',
      "\u{1d41e}\u{1d42f}\u{1d41a}\u{1d425}('1')\n",
      'dynamic_code',
      1,
      1,
    ],
    ['through two assignments', 'python', "t = 'a'; e = eval\ny = e\ny('1')\n", 'dynamic_code', 3, 1],
    [
      'bound to await import()',
      'javascript',
      "const m = await import('child_process');\nm.execSync('id');\n",
      'process_spawn',
      2,
      3,
    ],
    [
      'a call named by a folded key',
      'javascript',
      "const fs = require('fs');\nfs['readFile' + 'Sync']('/etc/passwd');\n",
      'file_access',
      2,
      25,
    ],
    ['a call through an alias of open', 'python', "o = open\no('/etc/passwd')\n", 'file_access', 2, 3],
    ['a bare name after a star import', 'python', "from os import *\nlistdir('/etc')\n", 'file_access', 2, 9],
    [
      'a method of a module reached through an alias',
      'javascript',
      "const p = require('fs').promises;\np.readFile('/etc/x');\n",
      'file_access',
      2,
      12,
    ],
    ['spelt with a \\u{…} escape', 'javascript', "\\u{65}val('1');\n", 'dynamic_code', 1, 1],
    [
      'inside a template substitution',
      'typescript',
      'const y = `${JSON.stringify(process.env)}`;\n',
      'environment_dump',
      1,
      37,
    ],
  ]);

  it('a word in a string, comment or regular expression is no identifier', async () => {
    const js = await analyze(
      "const r = /eval/;\nconst s = 'eval require';\nconsole.log(r, s, `eval`); // eval(\n",
      'javascript',
    );
    expect(js.findings).toEqual([]);
    const py = await analyze("s = 'eval os system'  # eval(\nprint(s)\n", 'python');
    expect(py.findings).toEqual([]);
  });
});

describe('benign look-alikes produce no rejecting finding', () => {
  const benign: [name: string, language: AnalysisLanguage, code: string][] = [
    ['a variable named system', 'python', "system = 'linux'\nprint(system.upper())\n"],
    ['a variable named system', 'javascript', "const system = { name: 'x' };\nconsole.log(system.name);\n"],
    [
      'os in strings and comments',
      'python',
      "# import os; os.system('id')\ns = 'import os; os.system(\"id\")'\nprint(s)\n",
    ],
    [
      'require in strings and comments',
      'javascript',
      "// require('child_process').exec('id')\nconst s = \"require('fs')\";\nconsole.log(s);\n",
    ],
    ['dict.get', 'python', "d = {'a': 1}\nprint(d.get('a'), d.get('environ'))\n"],
    ['re.compile', 'python', "import re\np = re.compile(r'\\d+')\nprint(p.findall('a1'))\n"],
    ['JSON.parse', 'javascript', 'const o = JSON.parse(\'{"a":1}\');\nconsole.log(JSON.stringify(o));\n'],
    [
      'a method named exec',
      'python',
      "class Q:\n    def exec(self, sql):\n        return sql\n\nQ().exec('select 1')\n",
    ],
    [
      'a method named exec',
      'javascript',
      "class Q { exec(sql) { return sql; } }\nnew Q().exec('select 1');\n/a/.exec('a');\n",
    ],
    [
      'a method named compile',
      'python',
      'class T:\n    def compile(self):\n        return 1\n\nT().compile()\n',
    ],
    ['fetch as a user function', 'python', "def fetch(url):\n    return url\n\nprint(fetch('x'))\n"],
    [
      'eval as a property key',
      'javascript',
      "const o = { eval: 1, exec: 2 };\nconsole.log(o.eval, o['eval']);\n",
    ],
    [
      'eval as a property key',
      'typescript',
      'const o: { eval: number } = { eval: 1 };\nconsole.log(o.eval);\n',
    ],
    ['eval as a dict key', 'python', "o = {'eval': 1}\nprint(o['eval'])\n"],
    [
      'variables named socket and connect',
      'python',
      'socket = 3\nconnect = lambda a: a\nprint(connect(socket))\n',
    ],
    ['a user class named Worker', 'javascript', 'class Worker { run() {} }\nnew Worker().run();\n'],
    [
      'an object named env stringified',
      'javascript',
      'const env = { a: 1 };\nconsole.log(JSON.stringify(env));\n',
    ],
    [
      'string building for output',
      'python',
      "print(''.join(['a', 'b']), '{}'.format(1), '%s' % 2, chr(65), b'x'.decode())\n",
    ],
    ['reading stdin', 'python', 'import sys\nprint(sys.stdin.read())\n'],
    [
      'decoding data that is not run',
      'python',
      "import base64, codecs, re\nprint(base64.b64decode('aGVsbG8=').decode(), codecs.decode('uryyb', 'rot13'))\nprint(bytes.fromhex('ff00'), re.compile(base64.b64decode('XGQr').decode()))\n",
    ],
    [
      'decoding data that is not run',
      'javascript',
      "console.log(atob('aGVsbG8='), Buffer.from('aGVsbG8=', 'base64').toString());\nconst o = JSON.parse(atob(x));\n",
    ],
    [
      'a user method exec given decoded text',
      'typescript',
      "class Q { exec(s: string) { return s; } }\nnew Q().exec(atob('aWQ='));\n",
    ],
    [
      'an env that is not the environment',
      'javascript',
      'const { env } = config;\nconsole.log(JSON.stringify(env), Object.entries(process.argv));\n',
    ],
    ['a dict named environ', 'python', "environ = {'a': 1}\nprint(dict(environ), list(environ.items()))\n"],
    [
      'everyday modules',
      'python',
      "import math, json, re, collections, itertools\nprint(json.dumps({'a': math.pi}))\n",
    ],
  ];
  for (const [name, language, code] of benign) {
    it(`${language}: ${name}`, async () => {
      const report = await analyze(code, language);
      expect(report.rejected, show(report.findings)).toEqual([]);
    });
  }

  it("importing Node's process module (the global every file has) is no finding", async () => {
    const report = await analyze(
      "import process from 'node:process';\nconsole.log(process.argv);\n",
      'typescript',
    );
    expect(report.findings).toEqual([]);
  });

  it("reading stdin with require('fs').readFileSync(0 | '/dev/stdin') is no import, even under strict", async () => {
    for (const code of [
      'const s = require("fs").readFileSync(0, "utf8");\n',
      "const s = require('node:fs').readFileSync('/dev/stdin', 'utf8');\n",
    ]) {
      expect((await analyze(code, 'javascript')).findings).toEqual([]);
    }
    // Anything else done with the module is still an import (and a use where it is one).
    for (const code of [
      "require('fs').readFileSync('/etc/passwd');\n",
      "require('fs').writeFileSync(0, 'x');\n",
      "const fs = require('fs');\nfs.readFileSync(0);\n",
      "const r = require('fs').readFileSync;\nr(0);\n",
    ]) {
      const report = await analyze(code, 'javascript');
      expect(
        report.rejected.map((f) => f.rule),
        code,
      ).toContain('import_system');
    }
  });

  it('reading one environment variable is not a dump', async () => {
    const js = await analyze(
      "const h = process.env.HOME;\nif ('X' in process.env) {}\nconst { A } = process.env;\n",
      'javascript',
    );
    expect(js.findings.map((f) => f.rule)).not.toContain('environment_dump');
    const py = await analyze(
      "import os\nh = os.environ['HOME']\nh = os.environ.get('X')\n'X' in os.environ\n",
      'python',
      { profile: 'standard' },
    );
    expect(py.findings.map((f) => f.rule)).not.toContain('environment_dump');
    expect(py.safe).toBe(true);
  });
});
