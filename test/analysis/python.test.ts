import { beforeAll, describe, expect, it } from 'vitest';
import { analyze, warmUp } from '../../src/analysis/index.js';
import { expectClean, expectFindings, type Dangerous } from './helpers.js';

beforeAll(async () => {
  await warmUp();
});

const imports: Dangerous[] = [
  { name: 'import os', code: 'import os\n', expect: [['import_system', 1]] },
  { name: 'import os.path', code: 'x = 1\nimport os.path\n', expect: [['import_system', 2]] },
  { name: 'from os import path', code: 'from os import path\n', expect: [['import_system', 1]] },
  { name: 'from os.path import join', code: 'from os.path import join\n', expect: [['import_system', 1]] },
  { name: 'import subprocess', code: 'import subprocess\n', expect: [['import_process', 1]] },
  { name: 'import pty', code: 'import pty\n', expect: [['import_process', 1]] },
  { name: 'import socket', code: 'import socket\n', expect: [['import_network', 1]] },
  { name: 'import urllib.request', code: 'import urllib.request\n', expect: [['import_network', 1]] },
  {
    name: 'from http.client import',
    code: 'from http.client import HTTPConnection\n',
    expect: [['import_network', 1]],
  },
  { name: 'import requests', code: 'import requests\n', expect: [['import_network', 1]] },
  {
    name: 'import httpx, aiohttp',
    code: 'import httpx\nimport aiohttp\n',
    expect: [
      ['import_network', 1],
      ['import_network', 2],
    ],
  },
  { name: 'import ctypes', code: 'import ctypes\n', expect: [['import_native_code', 1]] },
  { name: 'from cffi import FFI', code: 'from cffi import FFI\n', expect: [['import_native_code', 1]] },
  { name: 'import multiprocessing', code: 'import multiprocessing\n', expect: [['import_system', 1]] },
  { name: 'import shutil', code: 'import shutil\n', expect: [['import_system', 1]] },
  {
    name: 'signal, resource, mmap, fcntl, posix',
    code: 'import signal\nimport resource\nimport mmap\nimport fcntl\nimport posix\n',
    expect: [
      ['import_system', 1],
      ['import_system', 2],
      ['import_system', 3],
      ['import_system', 4],
      ['import_system', 5],
    ],
  },
  { name: 'import importlib', code: 'import importlib\n', expect: [['import_dynamic_code', 1]] },
  {
    name: 'import pickle, marshal',
    code: 'import pickle\nimport marshal\n',
    expect: [
      ['import_dynamic_code', 1],
      ['import_dynamic_code', 2],
    ],
  },
  { name: 'import builtins', code: 'import builtins\n', expect: [['import_dynamic_code', 1]] },
  { name: 'import threading (low)', code: 'import threading\n', expect: [['import_threading', 1]] },
  { name: 'import gc', code: 'import gc\n', expect: [['import_introspection', 1]] },
  {
    name: 'import inside a function',
    code: 'def f():\n    import subprocess\n',
    expect: [['import_process', 2]],
  },
  { name: 'several modules in one import', code: 'import math, os\n', expect: [['import_system', 1]] },
];

const calls: Dangerous[] = [
  { name: 'eval', code: 'x = eval("1 + 1")\n', expect: [['dynamic_code', 1]] },
  { name: 'exec', code: 'exec("x = 1")\n', expect: [['dynamic_code', 1]] },
  { name: 'builtin compile', code: 'c = compile("x", "f", "exec")\n', expect: [['dynamic_code', 1]] },
  {
    name: '__import__',
    code: '__import__("os")\n',
    expect: [
      ['dynamic_import', 1],
      ['import_system', 1],
    ],
  },
  { name: 'breakpoint', code: 'breakpoint()\n', expect: [['debugger_access', 1]] },
  { name: 'globals', code: 'g = globals()\n', expect: [['scope_introspection', 1]] },
  {
    name: 'vars and locals',
    code: 'vars()\nlocals()\n',
    expect: [
      ['scope_introspection', 1],
      ['scope_introspection', 2],
    ],
  },
  { name: 'os.system', code: 'import os\nos.system("id")\n', expect: [['process_spawn', 2]] },
  {
    name: 'subprocess.run / Popen',
    code: 'import subprocess\nsubprocess.run(["ls"])\nsubprocess.Popen("ls", shell=True)\n',
    expect: [
      ['process_spawn', 2],
      ['process_spawn', 3],
    ],
  },
  { name: 'os.environ', code: 'import os\nkey = os.environ["KEY"]\n', expect: [['environment_access', 2]] },
  { name: 'os.getenv', code: 'import os\nos.getenv("HOME")\n', expect: [['environment_access', 2]] },
  { name: 'os.kill', code: 'import os\nos.kill(1, 9)\n', expect: [['process_signal', 2]] },
  { name: 'sys.modules', code: 'import sys\nm = sys.modules["os"]\n', expect: [['sys_internals', 2]] },
  { name: 'sys._getframe', code: 'import sys\nf = sys._getframe(1)\n', expect: [['sys_internals', 2]] },
  {
    name: 'gc.get_objects',
    code: 'import gc\nobjs = gc.get_objects()\n',
    expect: [['introspection_escape', 2]],
  },
  {
    name: 'types.FunctionType',
    code: 'import types\nf = types.FunctionType(code, {})\n',
    expect: [['dynamic_code', 2]],
  },
  {
    name: 'importlib.import_module',
    code: 'import importlib\nm = importlib.import_module(name)\n',
    expect: [['dynamic_import', 2]],
  },
  { name: 'pdb.set_trace', code: 'import pdb\npdb.set_trace()\n', expect: [['debugger_access', 2]] },
];

const files: Dangerous[] = [
  { name: 'absolute path', code: 'data = open("/etc/passwd").read()\n', expect: [['file_access', 1]] },
  { name: 'parent directory', code: 'open("../secret.txt")\n', expect: [['file_access', 1]] },
  { name: '.. in the middle', code: 'open("a/../../b")\n', expect: [['file_access', 1]] },
  { name: 'home directory', code: 'open("~/.ssh/id_rsa")\n', expect: [['file_access', 1]] },
  { name: 'file= keyword', code: 'open(file="/etc/shadow")\n', expect: [['file_access', 1]] },
  {
    name: 'with-statement',
    code: 'with open("/root/.bashrc") as f:\n    pass\n',
    expect: [['file_access', 1]],
  },
  { name: 'f-string with absolute prefix', code: 'open(f"/etc/{name}")\n', expect: [['file_access', 1]] },
  { name: 'path from a constant', code: 'p = "/etc/passwd"\nopen(p)\n', expect: [['file_access', 2]] },
  { name: 'concatenated literal', code: 'open("/et" + "c/passwd")\n', expect: [['file_access', 1]] },
  {
    name: 'non-literal path',
    code: 'def f(path):\n    return open(path)\n',
    expect: [['file_access_dynamic', 2]],
  },
  { name: 'io.open', code: 'import io\nio.open("/etc/hosts")\n', expect: [['file_access', 2]] },
  { name: 'os.listdir("/")', code: 'import os\nos.listdir("/")\n', expect: [['file_access', 2]] },
  {
    name: 'pathlib.Path',
    code: 'from pathlib import Path\nPath("/etc/passwd").read_text()\n',
    expect: [['file_access', 2]],
  },
  { name: 'shutil.rmtree', code: 'import shutil\nshutil.rmtree("/home")\n', expect: [['file_access', 2]] },
];

const attributes: Dangerous[] = [
  {
    name: 'getattr with escape dunder',
    code: 'g = getattr(f, "__globals__")\n',
    expect: [['introspection_escape', 1]],
  },
  {
    name: 'getattr with other dunder',
    code: 'getattr(cls, "__init__")\n',
    expect: [['dynamic_attribute', 1]],
  },
  {
    name: 'getattr with pieces of a name',
    code: 'getattr(__builtins__, "ev" + "al")\n',
    expect: [
      ['dynamic_attribute', 1],
      ['dynamic_code', 1],
      ['introspection_escape', 1],
    ],
  },
  { name: 'getattr with a variable name', code: 'getattr(obj, name)\n', expect: [['dynamic_attribute', 1]] },
  {
    name: 'setattr with dunder',
    code: 'setattr(obj, "__class__", X)\n',
    expect: [['dynamic_attribute', 1]],
  },
  { name: 'delattr with variable', code: 'delattr(obj, n)\n', expect: [['dynamic_attribute', 1]] },
  { name: 'hasattr with dunder', code: 'hasattr(obj, "__code__")\n', expect: [['introspection_escape', 1]] },
  {
    name: 'getattr(os, "system")',
    code: 'import os\ngetattr(os, "system")("id")\n',
    expect: [['process_spawn', 2]],
  },
];

const introspection: Dangerous[] = [
  {
    name: 'classic subclasses walk',
    code: 'x = 1\n().__class__.__bases__[0].__subclasses__()\n',
    expect: [['introspection_escape', 2]],
  },
  { name: '__globals__', code: 'g = f.__globals__\n', expect: [['introspection_escape', 1]] },
  { name: '__builtins__', code: 'b = __builtins__\n', expect: [['introspection_escape', 1]] },
  { name: '__code__', code: 'c = f.__code__\n', expect: [['introspection_escape', 1]] },
  { name: '__mro__', code: 'm = int.__mro__\n', expect: [['introspection_escape', 1]] },
  {
    name: '__dict__ on the way to __globals__',
    code: 'd = f.__dict__\ng = f.__globals__\n',
    expect: [['introspection_escape', 2]],
  },
  {
    name: '__getattribute__',
    code: 'object.__getattribute__(o, "x")\n',
    expect: [['introspection_escape', 1]],
  },
  {
    name: '__loader__ / __spec__',
    code: 'a = m.__loader__\nb = m.__spec__\n',
    expect: [
      ['introspection_escape', 1],
      ['introspection_escape', 2],
    ],
  },
  { name: 'frame f_globals', code: 'g = frame.f_globals\n', expect: [['introspection_escape', 1]] },
  { name: 'generator gi_frame', code: 'fr = gen.gi_frame\n', expect: [['introspection_escape', 1]] },
  { name: 'traceback tb_frame', code: 'fr = tb.tb_frame\n', expect: [['introspection_escape', 1]] },
  {
    name: 'dunder string subscript',
    code: 'b = globals()["__builtins__"]\n',
    expect: [['introspection_escape', 1]],
  },
];

const evasions: Dangerous[] = [
  {
    name: 'import os as o; o.system',
    code: 'import os as o\no.system("x")\n',
    expect: [
      ['import_system', 1],
      ['process_spawn', 2],
    ],
  },
  {
    name: 'from os import system as s; s()',
    code: 'from os import system as s\ns("x")\n',
    expect: [
      ['import_system', 1],
      ['process_spawn', 1],
      ['process_spawn', 2],
    ],
  },
  {
    name: 'x = __import__; x("os")',
    code: 'x = __import__\nx("os")\n',
    expect: [
      ['dynamic_import', 1],
      ['dynamic_import', 2],
      ['import_system', 2],
    ],
  },
  {
    name: 'e = eval; e()',
    code: 'e = eval\ne("1")\n',
    expect: [
      ['dynamic_code', 1],
      ['dynamic_code', 2],
    ],
  },
  {
    name: '__import__("os").system',
    code: '__import__("os").system("id")\n',
    expect: [['process_spawn', 1]],
  },
  {
    name: 'import_module(...).run',
    code: 'import importlib\nimportlib.import_module("subprocess").run(["id"])\n',
    expect: [
      ['import_process', 2],
      ['process_spawn', 2],
    ],
  },
  { name: 'builtins.exec', code: 'import builtins\nbuiltins.exec("x")\n', expect: [['dynamic_code', 2]] },
  {
    name: 'from builtins import eval as e',
    code: 'from builtins import eval as e\ne("1")\n',
    expect: [
      ['dynamic_code', 1],
      ['dynamic_code', 2],
    ],
  },
  { name: 'star import', code: 'from os import *\nsystem("id")\n', expect: [['process_spawn', 2]] },
  {
    name: 'sys.modules["os"].system',
    code: 'import sys\nsys.modules["os"].system("id")\n',
    expect: [['process_spawn', 2]],
  },
  {
    name: 'alias of an alias',
    code: 'import os\na = os\nb = a\nb.system("id")\n',
    expect: [['process_spawn', 4]],
  },
  { name: 'NFKC-equivalent identifier', code: 'ｅｖａｌ("1")\n', expect: [['dynamic_code', 1]] },
  { name: 'escaped module name', code: '__import__("o\\x73")\n', expect: [['import_system', 1]] },
  {
    name: 'implicitly concatenated module name',
    code: '__import__("sub" "process")\n',
    expect: [['import_process', 1]],
  },
  {
    name: 'from re import compile, then del',
    code: 'from re import compile\ndel compile\ncompile("x", "", "exec")\n',
    expect: [['dynamic_code', 3]],
  },
  {
    name: 'shadowed eval in another scope',
    code: 'def f():\n    eval = print\neval("x")\n',
    expect: [['dynamic_code', 3]],
  },
  {
    name: 'parameter shadowing undone by global',
    code: 'def f(compile=None):\n    def g():\n        global compile\n        return compile("x", "", "exec")\n',
    expect: [['dynamic_code', 4]],
  },
  {
    name: 'default value is evaluated outside the function',
    code: 'def f(compile=compile):\n    return 1\n',
    expect: [['dynamic_code', 1]],
  },
  {
    name: 'long alias chain',
    code:
      'import os\n' +
      Array.from({ length: 20 }, (_, i) => `a${i + 1} = ${i === 0 ? 'os' : `a${i}`}\n`).join('') +
      'a20.system("id")\n',
    expect: [['process_spawn', 22]],
  },
  {
    name: 'deeply parenthesised module',
    code: 'import os\n' + '('.repeat(40) + 'os' + ')'.repeat(40) + '.system("id")\n',
    expect: [['process_spawn', 2]],
  },
  {
    name: 'vars(module)[name]',
    code: 'import os\nvars(os)["system"]("id")\n',
    expect: [['process_spawn', 2]],
  },
  { name: '__builtins__["eval"]', code: '__builtins__["eval"]("1")\n', expect: [['dynamic_code', 1]] },
  { name: 'parenthesised open', code: '(open)("/etc/passwd")\n', expect: [['file_access', 1]] },
  { name: 'Python 2 exec statement', code: 'exec "import os"\n', expect: [['syntax_error', 1]] },
  { name: 'eval passed as a value', code: 'apply(eval, "1")\n', expect: [['dynamic_code', 1]] },
];

const dos: Dangerous[] = [
  { name: 'while True: pass', code: 'while True:\n    pass\n', expect: [['infinite_loop', 1]] },
  { name: 'while 1', code: 'x = 0\nwhile 1:\n    x += 1\n', expect: [['infinite_loop', 2]] },
  { name: 'while not False', code: 'while not False:\n    pass\n', expect: [['infinite_loop', 1]] },
  {
    name: 'break only in a nested loop',
    code: 'while True:\n    for i in y:\n        break\n',
    expect: [['infinite_loop', 1]],
  },
  {
    name: 'return only in a nested function',
    code: 'while True:\n    def f():\n        return 1\n',
    expect: [['infinite_loop', 1]],
  },
  {
    name: 'constant flag never reset',
    code: 'running = True\nwhile running:\n    work()\n',
    expect: [['infinite_loop', 2]],
  },
  {
    name: 'itertools.count without break',
    code: 'import itertools\nfor i in itertools.count():\n    print(i)\n',
    expect: [['infinite_loop', 2]],
  },
  { name: 'range(10**10)', code: 'for i in range(10**10):\n    pass\n', expect: [['huge_allocation', 1]] },
  { name: 'range(a, N)', code: 'for i in range(a, 10**12):\n    pass\n', expect: [['huge_allocation', 1]] },
  { name: 'range with underscores', code: 'r = range(1_000_000_000)\n', expect: [['huge_allocation', 1]] },
  { name: 'range with a folded product', code: 'r = range(2 * 5e9)\n', expect: [['huge_allocation', 1]] },
  { name: '[0] * 10**9', code: 'a = [0] * 10**9\n', expect: [['huge_allocation', 1]] },
  { name: '"x" * N', code: 's = "x" * 1_000_000_000\n', expect: [['huge_allocation', 1]] },
  { name: 'N * [0]', code: 'a = 10**9 * [0]\n', expect: [['huge_allocation', 1]] },
  { name: 'bytearray(10**9)', code: 'b = bytearray(10**9)\n', expect: [['huge_allocation', 1]] },
  { name: '9**9**9', code: 'n = 9**9**9\n', expect: [['huge_allocation', 1]] },
  {
    name: 'N from a constant',
    code: 'N = 10**10\nfor i in range(N):\n    pass\n',
    expect: [['huge_allocation', 2]],
  },
];

describe('python: dangerous code is reported with the right rule and line', () => {
  for (const [group, fixtures] of Object.entries({
    imports,
    calls,
    files,
    attributes,
    introspection,
    evasions,
    dos,
  })) {
    describe(group, () => {
      for (const f of fixtures) {
        it(f.name, async () => {
          await expectFindings(f.code, 'python', f.expect);
        });
      }
    });
  }
});

describe('python: benign look-alikes are not reported', () => {
  const benign: [string, string][] = [
    [
      '__class__ and __dict__ in a repr',
      'class A:\n    def __repr__(self):\n        return f"{self.__class__.__name__}({self.__dict__})"\n',
    ],
    ['a function named system', 'def system():\n    return 1\n\nsystem()\n'],
    ['a variable named eval_score', 'eval_score = 3\nprint(eval_score)\n'],
    ['"import os" in a string', 's = "import os"\nprint(s)\n'],
    ['# import os in a comment', '# import os\nx = 1\n'],
    ['os as a dict key', 'd = {"os": 1, "subprocess": 2}\n'],
    ['obj.os attribute', 'class A:\n    os = 1\n\nprint(A().os)\n'],
    ['relative file', 'with open("data.txt") as f:\n    print(f.read())\n'],
    ['relative file in a folder, for writing', 'open("out/result.txt", "w").write("x")\n'],
    ['/tmp and standard streams', 'open("/tmp/x.txt", "w")\nopen("/dev/stdin").read()\nopen(0).read()\n'],
    ['re.compile', 'import re\np = re.compile(r"\\d+")\nprint(p.match("1"))\n'],
    ['a user method named exec/compile', 'cursor.exec("select 1")\nbuilder.compile()\nexec_time = 3\n'],
    ['harmless stdlib imports', 'import math, json, collections, itertools, functools, re, typing\n'],
    [
      'sys for stdin and recursion',
      'import sys\nsys.setrecursionlimit(10000)\nline = sys.stdin.readline()\n',
    ],
    ['while True with break', 'while True:\n    line = input()\n    if not line:\n        break\n'],
    ['while True with return', 'def f():\n    while True:\n        if g():\n            return 1\n'],
    ['while True with raise', 'while True:\n    raise StopIteration\n'],
    ['while True with sys.exit', 'import sys\nwhile True:\n    sys.exit(0)\n'],
    ['while True in a generator', 'def gen():\n    while True:\n        yield 1\n'],
    [
      'break in the else of an inner loop',
      'while True:\n    for x in xs:\n        pass\n    else:\n        break\n',
    ],
    ['flag that is reset', 'running = True\nwhile running:\n    running = False\n'],
    ['reasonable sizes', 'for i in range(10**6):\n    pass\na = [0] * 1000\nb = "-" * 80\nc = 2**100\n'],
    [
      'safe dunders and getattr',
      'getattr(obj, "name")\nhasattr(obj, "__len__")\ngetattr(f, "__name__", None)\n',
    ],
    ['__name__ == "__main__"', 'if __name__ == "__main__":\n    main()\n'],
    ['super().__init__', 'class A(B):\n    def __init__(self):\n        super().__init__()\n'],
    ['relative imports', 'from . import utils\nfrom .os import thing\n'],
    ['a method named system on some object', 'machine.system("x")\n'],
    ['keyword argument named eval', 'model.fit(eval=True)\n'],
    ['parameter named compile', 'def f(compile=False):\n    return compile\n'],
    ['from re import compile (no builtin left)', 'from re import compile\np = compile("a+")\n'],
  ];
  for (const [name, code] of benign) {
    it(name, async () => {
      await expectClean(code, 'python');
    });
  }

  it('sys alone is not reported', async () => {
    const report = await analyze('import sys\nprint(sys.argv)\n', 'python');
    expect(report.findings).toEqual([]);
  });

  it('open() with a variable path is medium, not rejected by default', async () => {
    const report = await analyze('def f(p):\n    return open(p).read()\n', 'python');
    expect(report.findings.map((f) => [f.rule, f.severity])).toEqual([['file_access_dynamic', 'medium']]);
    expect(report.safe).toBe(true);
  });
});

describe('python: positions', () => {
  it('reports 1-based line and column of the construct', async () => {
    const report = await analyze('x = 1\n  # c\nif x:\n    y = eval("2")\n', 'python');
    const f = report.findings.find((x) => x.rule === 'dynamic_code');
    expect(f).toMatchObject({ line: 4, column: 9, severity: 'critical' });
    expect(f?.message).toContain('eval');
  });

  it('names the import in the message', async () => {
    const report = await analyze('import subprocess\n', 'python');
    expect(report.findings[0]?.message).toContain('"subprocess"');
    expect(report.findings[0]).toMatchObject({ line: 1, column: 8 });
  });
});
