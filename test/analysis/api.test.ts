import { Tree } from 'web-tree-sitter';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { generateSource } from '../../bench/analysis.js';
import {
  analyze,
  CodeTooLargeError,
  DEFAULT_POLICY,
  RULES,
  warmUp,
  type AnalysisLanguage,
  type AnalysisReport,
} from '../../src/analysis/index.js';
import { formatReport } from '../../src/analysis/report.js';

const LANGUAGES: AnalysisLanguage[] = ['python', 'javascript', 'typescript'];

beforeAll(async () => {
  await warmUp();
});

describe('size limit', () => {
  it('rejects code over 50,000 characters with a clear error', async () => {
    const code = 'x = 1\n'.repeat(8_334); // 50,004 characters
    const error = await analyze(code, 'python').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CodeTooLargeError);
    expect((error as Error).message).toBe('code is 50004 characters; the limit is 50000');
  });

  it('accepts code of exactly the limit', async () => {
    const code = 'x'.repeat(DEFAULT_POLICY.maxCodeChars);
    const report = await analyze(code, 'javascript');
    expect(report.language).toBe('javascript');
  });

  it('honours a configured limit', async () => {
    await expect(analyze('x = 1\n', 'python', { maxCodeChars: 5 })).rejects.toThrow(
      'code is 6 characters; the limit is 5',
    );
    await expect(analyze('x'.repeat(60_000), 'python', { maxCodeChars: 100_000 })).resolves.toMatchObject({
      language: 'python',
    });
  });

  it('checks the size before anything else, parsing included', async () => {
    // An unsupported language would fail in the parser; the size error must come first.
    const error = await analyze('y'.repeat(11), 'cobol' as AnalysisLanguage, { maxCodeChars: 10 }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(CodeTooLargeError);
  });
});

describe('syntax errors', () => {
  const cases: [AnalysisLanguage, string, number, number][] = [
    ['python', 'import math\ndef f(:\n    pass\n', 2, 7],
    ['python', 'x = (1,\n', 1, 1],
    ['python', 'y = 2\nexec "import os"\n', 2, 1],
    ['python', 'print "hello"\n', 1, 1],
    ['javascript', 'const a = 1;\nfoo(1, 2\nlet x = ;\n', 2, 1],
    ['javascript', 'function (\n', 1, 1],
    ['typescript', 'let x: = 1;\n', 1, 1],
  ];
  for (const [language, code, line] of cases) {
    it(`${language}: ${JSON.stringify(code)}`, async () => {
      const report = await analyze(code, language);
      const error = report.findings.find((f) => f.rule === 'syntax_error');
      expect(error, JSON.stringify(report.findings)).toBeDefined();
      expect(error?.severity).toBe('high');
      expect(error?.line).toBe(line);
      expect(error?.message).toMatch(/^Syntax error/);
      expect(report.safe).toBe(false);
      expect(report.rejected).toContainEqual(error);
    });
  }

  it('points at the first error, with its column', async () => {
    const report = await analyze('x = 1\ny = foo(\n', 'python');
    const error = report.findings.find((f) => f.rule === 'syntax_error');
    expect(error).toMatchObject({ line: 2 });
    expect(error?.column).toBeGreaterThanOrEqual(1);
  });

  it('still reports other findings in code that does not parse', async () => {
    const report = await analyze('import subprocess\ndef f(:\n', 'python');
    expect(report.findings.map((f) => f.rule)).toEqual(
      expect.arrayContaining(['import_process', 'syntax_error']),
    );
  });

  it('never throws on garbage', async () => {
    for (const language of LANGUAGES) {
      for (const code of ['\u0000\u0001\u0002', '}}}{{{', '"""', '`${', '\\', '🙂'.repeat(100), '']) {
        const report = await analyze(code, language);
        expect(report.language).toBe(language);
      }
    }
  });

  it('survives deeply nested input without a stack overflow', async () => {
    const depth = 5_000;
    const cases: [AnalysisLanguage, string][] = [
      ['python', `while True:\n    x = ${'('.repeat(depth)}1${')'.repeat(depth)}\n`],
      ['python', `x = ${'1 + '.repeat(depth)}1\nrange(x)\n`],
      ['javascript', `while (true) { x = ${'['.repeat(depth)}${']'.repeat(depth)}; }\n`],
      ['typescript', `const s = ${'"a" + '.repeat(depth)}"b";\nrequire(s);\n`],
    ];
    for (const [language, code] of cases) {
      const report = await analyze(code, language);
      expect(report.language).toBe(language);
    }
  });

  it('empty code is safe', async () => {
    for (const language of LANGUAGES) {
      const report = await analyze('', language);
      expect(report).toMatchObject({ safe: true, findings: [], rejected: [] });
    }
  });
});

describe('policy', () => {
  it('is strict and rejects at high by default', () => {
    expect(DEFAULT_POLICY).toEqual({
      profile: 'strict',
      rejectAt: 'high',
      maxCodeChars: 50_000,
      maxLiteralRange: 10_000_000,
    });
  });

  it('standard rejects at high: an import alone of a medium module passes', async () => {
    const medium = await analyze('import os\n', 'python', { profile: 'standard' });
    expect(medium.findings).toHaveLength(1);
    expect(medium.safe).toBe(true);
    expect(medium.rejected).toEqual([]);
    const high = await analyze('import subprocess\n', 'python');
    expect(high.safe).toBe(false);
    expect(high.rejected).toHaveLength(1);
  });

  it('rejectAt medium rejects medium findings', async () => {
    const report = await analyze('import os\n', 'python', { profile: 'standard', rejectAt: 'medium' });
    expect(report.safe).toBe(false);
    expect(report.rejected.map((f) => f.rule)).toEqual(['import_system']);
  });

  it('rejectAt low rejects low findings', async () => {
    expect((await analyze('import threading\n', 'python')).safe).toBe(true);
    expect((await analyze('import threading\n', 'python', { rejectAt: 'low' })).safe).toBe(false);
  });

  it('rejectAt critical lets high findings through but not critical ones', async () => {
    const high = await analyze('import subprocess\n', 'python', {
      profile: 'standard',
      rejectAt: 'critical',
    });
    expect(high.safe).toBe(true);
    expect(high.findings).toHaveLength(1);
    const critical = await analyze('eval("1")\n', 'javascript', { rejectAt: 'critical' });
    expect(critical.safe).toBe(false);
  });

  it('maxLiteralRange changes what counts as huge', async () => {
    expect((await analyze('for i in range(1000):\n    pass\n', 'python')).findings).toEqual([]);
    const report = await analyze('for i in range(1000):\n    pass\n', 'python', { maxLiteralRange: 100 });
    expect(report.findings.map((f) => f.rule)).toEqual(['huge_allocation']);
    const js = await analyze('new Array(500);\n', 'javascript', { maxLiteralRange: 100 });
    expect(js.findings.map((f) => f.rule)).toEqual(['huge_allocation']);
  });

  it('undefined policy fields keep their defaults', async () => {
    const report = await analyze('import os\n', 'python', {
      profile: undefined,
      rejectAt: undefined,
      maxCodeChars: undefined,
    });
    expect(report.safe).toBe(false);
    expect(report.rejected.map((f) => f.rule)).toEqual(['import_system']);
  });

  it('refuses an invalid profile, severity or language', async () => {
    await expect(analyze('x', 'python', { profile: 'lax' as 'off' })).rejects.toThrow('invalid profile: lax');
    await expect(analyze('x', 'python', { rejectAt: 'severe' as 'high' })).rejects.toThrow(RangeError);
    await expect(analyze('x', 'ruby' as AnalysisLanguage)).rejects.toThrow('unsupported language: ruby');
  });
});

describe('report shape', () => {
  it('sorts findings by line then column and keeps rejected a subset', async () => {
    const code = 'import threading\nimport os; import subprocess\nx = eval("1")\nwhile True:\n    pass\n';
    const report = await analyze(code, 'python', { profile: 'standard' });
    const positions = report.findings.map((f) => [f.line, f.column]);
    const sorted = [...positions].sort(
      (a, b) => (a[0] as number) - (b[0] as number) || (a[1] as number) - (b[1] as number),
    );
    expect(positions).toEqual(sorted);
    expect(report.findings.map((f) => f.rule)).toEqual([
      'import_threading',
      'import_system',
      'import_process',
      'dynamic_code',
      'infinite_loop',
    ]);
    expect(report.rejected.map((f) => f.rule)).toEqual(['import_process', 'dynamic_code', 'infinite_loop']);
    for (const f of report.rejected) expect(report.findings).toContain(f);
    expect(report.durationMs).toBeGreaterThanOrEqual(0);
  });

  it('every finding uses a catalogue rule with the catalogue severity and language', async () => {
    const samples: [AnalysisLanguage, string][] = [
      ['python', generateSource('python', 200) + 'import ctypes\nopen(p)\ngetattr(o, n)\n'],
      ['javascript', generateSource('javascript', 200) + 'with (o) {}\nfetch(u);\nprocess.env.X;\n'],
      ['typescript', generateSource('typescript', 200) + 'globalThis[k];\nObject.prototype.x = 1;\n'],
    ];
    for (const [language, code] of samples) {
      const report = await analyze(code, language, { maxCodeChars: 1e6 });
      expect(report.findings.length).toBeGreaterThan(3);
      for (const f of report.findings) {
        const rule = RULES.find((r) => r.id === f.rule);
        expect(rule, f.rule).toBeDefined();
        expect(f.severity).toBe(rule?.severity);
        expect(rule?.languages).toContain(language);
        expect(f.message.length).toBeGreaterThan(10);
        expect(Number.isInteger(f.line) && f.line >= 1).toBe(true);
        expect(Number.isInteger(f.column) && f.column >= 1).toBe(true);
      }
    }
  });
});

describe('RULES catalogue', () => {
  it('has unique snake_case ids, valid severities and languages, and descriptions', () => {
    const ids = RULES.map((r) => r.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const r of RULES) {
      expect(r.id).toMatch(/^[a-z]+(_[a-z]+)*$/);
      expect(['low', 'medium', 'high', 'critical']).toContain(r.severity);
      expect(r.languages.length).toBeGreaterThan(0);
      for (const l of r.languages) expect(LANGUAGES).toContain(l);
      expect(r.description.length).toBeGreaterThan(20);
    }
  });

  it('cannot be modified by a caller', () => {
    expect(Object.isFrozen(RULES)).toBe(true);
    expect(Object.isFrozen(RULES[0])).toBe(true);
    expect(Object.isFrozen(RULES[0]?.languages)).toBe(true);
  });

  // One trigger per rule and language: the catalogue promises nothing the analyser cannot produce.
  const triggers: Record<string, Partial<Record<AnalysisLanguage, string>>> = {
    syntax_error: { python: 'def (', javascript: 'let = ;', typescript: 'let = ;' },
    import_process: {
      python: 'import subprocess',
      javascript: 'require("child_process")',
      typescript: 'import "cluster"',
    },
    import_native_code: { python: 'import ctypes' },
    import_dynamic_code: {
      python: 'import marshal',
      javascript: 'require("vm")',
      typescript: 'import "repl"',
    },
    import_system: { python: 'import os', javascript: 'require("fs")', typescript: 'import "os"' },
    import_network: { python: 'import socket', javascript: 'require("net")', typescript: 'import "https"' },
    import_introspection: { python: 'import inspect' },
    import_threading: { python: 'import threading' },
    thread_spawn: {
      python: 'import multiprocessing\nmultiprocessing.Process(target=f).start()',
      javascript: 'const { Worker } = require("worker_threads"); new Worker(src, { eval: true });',
      typescript: 'import cluster from "cluster"; cluster.fork();',
    },
    network_connect: {
      python: 'import socket\nsocket.socket().connect((h, 80))',
      javascript: 'require("net").connect(80, h)',
      typescript: 'import * as http from "http"; http.get(u);',
    },
    environment_dump: {
      python: 'import os, json\njson.dumps(dict(os.environ))',
      javascript: 'JSON.stringify(process.env)',
      typescript: 'Object.keys(process.env)',
    },
    dynamic_code: { python: 'exec(s)', javascript: 'eval(s)', typescript: 'new Function(s)' },
    encoded_payload: {
      python: "import base64\nexec(base64.b64decode('MSsx'))",
      javascript: "eval(atob('MSsx'))",
      typescript: "new Function(Buffer.from('31', 'hex').toString())",
    },
    dynamic_import: { python: '__import__(n)', javascript: 'require(n)', typescript: 'import(n)' },
    debugger_access: { python: 'breakpoint()' },
    scope_introspection: { python: 'locals()' },
    dynamic_attribute: { python: 'setattr(o, n, v)' },
    introspection_escape: { python: 'f.__globals__' },
    sys_internals: { python: 'import sys\nsys.settrace(f)' },
    file_access: {
      python: 'open("/etc/shadow")',
      javascript: 'require("fs").readFileSync("/etc/shadow")',
      typescript: 'import { rmSync } from "fs"; rmSync("/", {});',
    },
    file_access_dynamic: {
      python: 'open(p)',
      javascript: 'require("fs").readFileSync(p)',
      typescript: 'import * as fs from "fs"; fs.readFileSync(p);',
    },
    process_spawn: {
      python: 'import os\nos.popen("id")',
      javascript: 'require("child_process").execSync("id")',
      typescript: 'import { spawn } from "child_process";',
    },
    process_signal: {
      python: 'import os\nos.killpg(1, 9)',
      javascript: 'process.kill(1)',
      typescript: 'process.kill(1)',
    },
    process_exit: { javascript: 'process.exit()', typescript: 'process.exit()' },
    environment_access: {
      python: 'import os\nos.environ',
      javascript: 'process.env',
      typescript: 'process.env',
    },
    process_internals: { javascript: 'process.dlopen(m, f)', typescript: 'process.binding("fs")' },
    module_loader: {
      javascript: 'module.constructor._load("fs")',
      typescript: 'import { createRequire } from "module";',
    },
    global_dynamic_access: { javascript: 'globalThis[k]', typescript: 'global[k]' },
    prototype_pollution: { javascript: 'a.__proto__.b = 1', typescript: 'String.prototype.x = 1' },
    constructor_escape: { javascript: 'a.constructor.constructor', typescript: 'a.constructor.constructor' },
    timer_string_code: { javascript: 'setTimeout("x()")', typescript: 'setInterval("x()", 1)' },
    with_statement: { javascript: 'with (a) {}', typescript: 'with (a) {}' },
    network_access: { javascript: 'fetch(u)', typescript: 'new XMLHttpRequest()' },
    infinite_loop: {
      python: 'while True:\n    pass',
      javascript: 'for (;;) {}',
      typescript: 'while (true) {}',
    },
    huge_allocation: { python: 'range(10**8)', javascript: 'new Array(1e8)', typescript: '"x".repeat(1e8)' },
  };

  it('lists exactly the rules that have triggers here', () => {
    expect(Object.keys(triggers).sort()).toEqual(RULES.map((r) => r.id).sort());
  });

  for (const rule of RULES) {
    for (const language of rule.languages) {
      it(`${rule.id} is produced for ${language}`, async () => {
        const code = triggers[rule.id]?.[language];
        expect(code, `no trigger for ${rule.id} in ${language}`).toBeDefined();
        const report = await analyze(`${code as string}\n`, language);
        expect(report.findings.map((f) => f.rule)).toContain(rule.id);
      });
    }
  }
});

describe('formatReport', () => {
  it('prints one line per finding and a rejection summary', async () => {
    const report = await analyze('import os\nimport subprocess\n', 'python', { profile: 'standard' });
    expect(formatReport(report).split('\n')).toEqual([
      '1:8 medium import_system Imports "os", which gives access to the operating system (files, processes, signals or environment)',
      '2:8 high import_process Imports "subprocess", a module for starting other programs and shell commands',
      'rejected: 1 finding at or above high',
    ]);
    expect(formatReport(report, 'medium').split('\n').pop()).toBe('rejected: 1 finding at or above medium');
  });

  it('pluralises the summary', async () => {
    const report = await analyze('eval("1")\neval("2")\n', 'javascript');
    expect(formatReport(report).split('\n').pop()).toBe('rejected: 2 findings at or above critical');
  });

  it('says safe for a clean report', async () => {
    expect(formatReport(await analyze('print(1)\n', 'python'))).toBe('safe');
  });

  it('lists findings below the threshold and says safe', async () => {
    const text = formatReport(await analyze('import os\n', 'python', { profile: 'standard' }));
    expect(text.split('\n')).toHaveLength(2);
    expect(text.split('\n')[0]).toMatch(/^1:8 medium import_system /);
    expect(text.split('\n')[1]).toBe('safe');
  });

  it('formats a hand-made report', () => {
    const report: AnalysisReport = {
      safe: false,
      language: 'javascript',
      findings: [{ rule: 'dynamic_code', severity: 'critical', message: 'Uses eval', line: 3, column: 5 }],
      rejected: [{ rule: 'dynamic_code', severity: 'critical', message: 'Uses eval', line: 3, column: 5 }],
      durationMs: 1,
    };
    expect(formatReport(report, 'high')).toBe(
      '3:5 critical dynamic_code Uses eval\nrejected: 1 finding at or above high',
    );
  });
});

describe('runtime', () => {
  it('warmUp can be called repeatedly and concurrently', async () => {
    await Promise.all([warmUp(), warmUp(), warmUp()]);
    await warmUp();
  });

  it('concurrent analyses of different languages do not interfere', async () => {
    const jobs = Array.from({ length: 30 }, (_, i) => {
      const language = LANGUAGES[i % 3] as AnalysisLanguage;
      const code = language === 'python' ? 'import subprocess\n' : 'require("child_process");\n';
      return analyze(code, language).then((r) => [language, r.findings.map((f) => f.rule)] as const);
    });
    for (const [, rules] of await Promise.all(jobs)) expect(rules).toEqual(['import_process']);
  });

  // The 2,000-line timing (SPEC: under 100 ms) is measured by `npm run bench` (bench/analysis.ts), not
  // asserted here: a wall-clock bound in a unit test fails on a busy machine.
  it('analyses a 2,000-line file of every language completely', async () => {
    for (const language of LANGUAGES) {
      const code = generateSource(language, 2_000);
      const report = await analyze(code, language, { maxCodeChars: code.length });
      // The generator puts four dangerous lines first; the rest is benign and must stay silent.
      expect(
        report.findings.map((f) => f.line),
        language,
      ).toEqual([1, 2, 3, 4]);
      expect(report.safe).toBe(false);
    }
  });

  it('frees every syntax tree it creates', async () => {
    // Trees live in wasm memory, which the garbage collector only reclaims late if at all.
    const spy = vi.spyOn(Tree.prototype, 'delete');
    try {
      for (const language of LANGUAGES) await analyze('x = 1\n', language);
      await analyze('def f(:\n', 'python');
      expect(spy).toHaveBeenCalledTimes(4);
    } finally {
      spy.mockRestore();
    }
  });
});
