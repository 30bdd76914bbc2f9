import { afterAll, describe, expect, it } from 'vitest';
import { LANGUAGES, type LanguageId } from '../../src/languages/index.js';
import { resultWithoutRun, type Engine } from '../../src/sandbox/engine.js';
import type { RunResult, RunSpec } from '../../src/sandbox/types.js';
import { SandboxFailureError } from '../../src/pipeline/reasons.js';
import { runTask } from '../../src/pipeline/run-task.js';
import {
  MAX_SAMPLE_PAYLOADS,
  validateTaskFile,
  type ValidationOutcome,
} from '../../src/pipeline/validate.js';
import { testEngine } from '../sandbox/helpers.js';

const engine = testEngine();
afterAll(() => engine.shutdown());

/** The real engine, counting the runs that reach it. */
function countingEngine(): { engine: Engine; runs: () => number } {
  let runs = 0;
  const counted: Engine = {
    ...engine,
    run: (spec: RunSpec, options) => {
      runs++;
      return engine.run(spec, options);
    },
  };
  return { engine: counted, runs: () => runs };
}

// These tests are about the sandboxed run: the standard profile lets `import os` through to it
// (the profiles themselves are tested in test/analysis).
const deps = { engine, policy: { profile: 'standard' as const } };

function validate(
  language: LanguageId,
  code: string,
  samplePayloads?: unknown[],
): Promise<ValidationOutcome> {
  return validateTaskFile(deps, { code, language: LANGUAGES[language], samplePayloads });
}

function expectRejected(outcome: ValidationOutcome, reason: RegExp): void {
  expect(outcome.status).toBe('REJECTED');
  expect(outcome.reasons.join('\n')).toMatch(reason);
}

const GOOD: Record<LanguageId, string> = {
  python: [
    'async def handler(payload):',
    '    items = payload.get("items", [])',
    '    print("summing", len(items), "items")',
    '    return {"count": len(items), "total": sum(items), "text": payload.get("text", "")[::-1]}',
    '',
  ].join('\n'),
  javascript: [
    'export async function handler(payload) {',
    '  const items = payload.items ?? [];',
    "  console.log('summing', items.length, 'items');",
    "  return { count: items.length, total: items.reduce((a, b) => a + b, 0), text: [...(payload.text ?? '')].reverse().join('') };",
    '}',
    '',
  ].join('\n'),
  typescript: [
    'interface Payload { items?: number[]; text?: string }',
    'export async function handler(payload: Payload): Promise<{ count: number; total: number; text: string }> {',
    '  const items = payload.items ?? [];',
    "  console.log('summing', items.length, 'items');",
    "  return { count: items.length, total: items.reduce((a, b) => a + b, 0), text: [...(payload.text ?? '')].reverse().join('') };",
    '}',
    '',
  ].join('\n'),
};

describe('a well-formed task file', () => {
  it.each(['python', 'javascript', 'typescript'] as const)(
    '%s: is VALIDATED and runTask returns its result',
    async (language) => {
      const outcome = await validate(language, GOOD[language], [{ items: [5], text: 'ab' }]);
      expect(outcome.reasons).toEqual([]);
      expect(outcome.status).toBe('VALIDATED');
      expect(outcome.warnings).toEqual([]);
      expect(outcome.probes).toEqual([
        { source: 'sample', number: 1, ok: true, preview: expect.stringMatching(/"total": ?5/) },
        { source: 'probe', number: 1, ok: true, preview: expect.stringMatching(/"count": ?0/) },
        { source: 'probe', number: 2, ok: true, preview: expect.stringMatching(/"text": ?"nedraw"/) },
      ]);
      expect(outcome.usage?.wallMs).toBeGreaterThan(0);
      expect(outcome.logs).toContain('summing');

      const run = await runTask(deps, {
        code: GOOD[language],
        language: LANGUAGES[language],
        payload: { items: [1, 2, 3], text: 'abc' },
      });
      expect(run).toMatchObject({
        status: 'succeeded',
        verdict: 'success',
        result: { count: 3, total: 6, text: 'cba' },
      });
      expect(run.error).toBeUndefined();
      // The handler's print went to the logs, not into the result channel.
      expect(run.logs).toContain('summing 3 items');
    },
  );
});

describe('the probe policy', () => {
  it('only notes a JavaScript handler declaring more parameters than the one it gets', async () => {
    const code =
      'export async function handler(payload: unknown, context?: { user: string }) { return context?.user ?? null; }\n';
    const outcome = await validate('typescript', code);
    expect(outcome.status).toBe('VALIDATED');
    expect(outcome.warnings).toEqual([
      expect.stringMatching(/declares 2 parameters but is called with one \(payload\)/),
    ]);
  });

  const needsName = 'async def handler(payload):\n    return {"greeting": "hello " + payload["name"]}\n';

  it('only warns when the handler raises on the default probes', async () => {
    const outcome = await validate('python', needsName);
    expect(outcome.status).toBe('VALIDATED');
    expect(outcome.warnings).toHaveLength(2);
    expect(outcome.warnings[0]).toMatch(/raised on probe payload #1 \(line 2\): KeyError: 'name'/);
  });

  it("validates when the user's sample payloads succeed", async () => {
    const outcome = await validate('python', needsName, [{ name: 'ada' }]);
    expect(outcome.status).toBe('VALIDATED');
    expect(outcome.probes[0]).toEqual({
      source: 'sample',
      number: 1,
      ok: true,
      preview: '{"greeting": "hello ada"}',
    });
  });

  it('rejects when a sample payload raises, naming the payload, the error and the line', async () => {
    const outcome = await validate('python', needsName, [{ name: 'ada' }, { nom: 'x' }]);
    expectRejected(outcome, /raised on sample payload #2 \(line 2\): KeyError: 'name'/);
    expect(outcome.reasons).toHaveLength(1);
  });

  it('refuses more sample payloads than allowed without running anything', async () => {
    const counting = countingEngine();
    const samples = Array.from({ length: MAX_SAMPLE_PAYLOADS + 1 }, () => ({}));
    const outcome = await validateTaskFile(
      { engine: counting.engine, policy: {} },
      { code: GOOD.python, language: LANGUAGES.python, samplePayloads: samples },
    );
    expectRejected(outcome, /too many sample payloads/);
    expect(counting.runs()).toBe(0);
  });

  it('warns about errors that escape a JavaScript handler in the background', async () => {
    const code = [
      'export async function handler(payload) {',
      "  setTimeout(() => { throw new Error('late failure'); }, 0);",
      '  await new Promise((resolve) => setTimeout(resolve, 5));',
      '  return 1;',
      '}',
      '',
    ].join('\n');
    const outcome = await validate('javascript', code);
    expect(outcome.status).toBe('VALIDATED');
    expect(outcome.warnings[0]).toMatch(
      /an error escaped the handler in the background \(line 2\): Error: late failure/,
    );
  });
});

describe('a task file is REJECTED with a clear reason when', () => {
  it.each([
    [
      'python',
      'def helper(payload):\n    return 1\n',
      /no handler: the task file must define `async def handler\(payload\)`/,
    ],
    [
      'javascript',
      'export async function run(payload) { return 1; }\n',
      /no handler: the task file must define `export async function handler\(payload\)`/,
    ],
    ['python', 'handler = 42\n', /handler is not a function: `handler` is a int/],
  ] as const)('%s has no handler: %j', async (language, code, reason) => {
    expectRejected(await validate(language, code), reason);
  });

  it.each([
    [
      'python',
      'def handler(payload):\n    return {"ok": True}\n',
      /handler is not async: it is defined with `def`, not `async def`/,
    ],
    [
      'javascript',
      'export function handler(payload) { return { ok: true }; }\n',
      /handler is not async: it is a plain function/,
    ],
    [
      'typescript',
      'export const handler = (payload: unknown) => Promise.resolve(1);\n',
      /handler is not async/,
    ],
    ['python', 'async def handler(payload):\n    yield 1\n', /async generator/],
  ] as const)('%s handler is not async: %j', async (language, code, reason) => {
    expectRejected(await validate(language, code), reason);
  });

  it.each([
    [
      'python',
      'async def handler(payload, context):\n    return 1\n',
      /wrong handler signature: `handler\(payload, context\)` cannot be called with one argument/,
    ],
    ['python', 'async def handler():\n    return 1\n', /wrong handler signature: `handler\(\)`/],
  ] as const)('%s handler has the wrong signature: %j', async (language, code, reason) => {
    expectRejected(await validate(language, code), reason);
  });

  it('the file has a syntax error (caught before any sandbox)', async () => {
    const counting = countingEngine();
    const outcome = await validateTaskFile(
      { engine: counting.engine, policy: {} },
      { code: 'async def handler(payload):\n    return (1 +\n', language: LANGUAGES.python },
    );
    expectRejected(outcome, /syntax error \(line 2\)/);
    expect(counting.runs()).toBe(0);
  });

  it.each([
    [
      'python',
      'import json\n\nraise RuntimeError("config missing")\n\nasync def handler(payload):\n    return 1\n',
      /failed while being imported \(line 3\): RuntimeError: config missing/,
    ],
    [
      'javascript',
      "throw new Error('config missing');\nexport async function handler(payload) { return 1; }\n",
      /failed while being imported \(line 1\): Error: config missing/,
    ],
    [
      'typescript',
      'const cfg: { x?: { y: number } } = {};\nconst y: number = cfg.x!.y;\nexport async function handler(p: unknown) { return y; }\n',
      /failed while being imported \(line 2\): TypeError/,
    ],
  ] as const)(
    '%s fails while being imported, showing the last line of the traceback',
    async (language, code, reason) => {
      expectRejected(await validate(language, code), reason);
    },
  );

  it('the file calls os.system (rejected statically, never reaching a sandbox)', async () => {
    const counting = countingEngine();
    const outcome = await validateTaskFile(
      { engine: counting.engine, policy: {} },
      {
        code: 'import os\n\nasync def handler(payload):\n    os.system("id")\n    return 1\n',
        language: LANGUAGES.python,
      },
    );
    expectRejected(outcome, /rejected by static analysis \(line 4, process_spawn\)/);
    expect(outcome.findings.map((f) => f.rule)).toContain('process_spawn');
    expect(outcome.usage).toBeUndefined();
    expect(counting.runs()).toBe(0);
  });

  it.each([
    [
      'python',
      'def keep_going():\n    return True\n\nasync def handler(payload):\n    n = 0\n    while keep_going():\n        n += 1\n    return n\n',
    ],
    [
      'javascript',
      'function keepGoing() { return true; }\nexport async function handler(payload) { let n = 0; while (keepGoing()) n++; return n; }\n',
    ],
  ] as const)(
    '%s handler loops forever (stopped by the sandbox, not by analysis)',
    async (language, code) => {
      const outcome = await validate(language, code);
      expect(outcome.findings).toEqual([]);
      expectRejected(outcome, /timed out: used its 2 s of CPU time/);
      expect(outcome.usage?.cpuMs).toBeGreaterThanOrEqual(1_500);
    },
  );

  it.each([
    [
      'python',
      'def big():\n    return int("1" + "0" * 10)\n\nasync def handler(payload):\n    s = "x" * 1024\n    while len(s) < big():\n        s = s + s\n    return len(s)\n',
    ],
    [
      'javascript',
      'export async function handler(payload) {\n  const hoard = [];\n  for (;;) {\n    hoard.push(new Array(1 << 20).fill(hoard.length));\n    if (hoard.length < 0) break;\n  }\n  return hoard.length;\n}\n',
    ],
  ] as const)('%s handler hogs memory', async (language, code) => {
    expectRejected(await validate(language, code), /exceeded its memory limit of 128 MiB/);
  });

  it('the handler awaits forever (stopped by the wall-clock limit given for this validation)', async () => {
    const code = 'import asyncio\n\nasync def handler(payload):\n    await asyncio.Event().wait()\n';
    const outcome = await validateTaskFile(deps, {
      code,
      language: LANGUAGES.python,
      limits: { wallTimeMs: 1_500 },
    });
    expectRejected(outcome, /timed out: still running after its 1\.5 s wall-clock limit/);
    expect(outcome.usage?.wallMs).toBeGreaterThanOrEqual(1_500);
  });

  it('the handler makes a forbidden system call (with a policy lenient enough to let ctypes through)', async () => {
    const code =
      'import ctypes\n\nasync def handler(payload):\n    return ctypes.CDLL(None).syscall(101, 0, 0, 0, 0)\n';
    const outcome = await validateTaskFile(
      { engine, policy: { profile: 'standard' as const, rejectAt: 'critical' as const } },
      { code, language: LANGUAGES.python },
    );
    expect(outcome.findings.map((f) => f.rule)).toContain('import_native_code');
    expectRejected(outcome, /security violation: .*forbidden system call: ptrace/);
    expect(outcome.violations).toEqual([
      expect.objectContaining({ rule: 'forbidden_syscall', syscall: 'ptrace' }),
    ]);
  });

  it('the handler ends the process itself, leaving no verdict', async () => {
    const code = 'import os\n\nasync def handler(payload):\n    os._exit(0)\n';
    expectRejected(
      await validate('python', code),
      /the task file ended the process before validation finished/,
    );
  });

  it("the handler writes a verdict of its own onto the harness's private descriptor", async () => {
    const code = [
      'import os',
      '',
      'async def handler(payload):',
      '    for fd in range(3, 10):',
      '        try:',
      '            os.write(fd, b"ok\\n")',
      '        except OSError:',
      '            pass',
      '    return 1',
      '',
    ].join('\n');
    expectRejected(await validate('python', code), /the validation result was tampered with/);
  });

  it('the handler floods its output', async () => {
    const code =
      'async def handler(payload):\n    for i in range(2000):\n        print("x" * 1000)\n    return 1\n';
    expectRejected(await validate('python', code), /printed more than 64 KiB of output/);
  });

  it.each([
    [
      'python',
      'async def handler(payload):\n    return {1, 2, 3}\n',
      /result for probe payload #1 is not JSON-serialisable: Object of type set/,
    ],
    [
      'python',
      'async def handler(payload):\n    return {"x": float("nan")}\n',
      /not JSON-serialisable: Out of range float values/,
    ],
    [
      'python',
      'async def handler(payload):\n    return handler\n',
      /not JSON-serialisable: Object of type function/,
    ],
    [
      'javascript',
      'export async function handler(payload) { return { f: () => 1 }; }\n',
      /not JSON-serialisable: the result\.f is a function/,
    ],
    [
      'javascript',
      'export async function handler(payload) { return new Set([1]); }\n',
      /not JSON-serialisable: the result is a Set/,
    ],
    [
      'javascript',
      'export async function handler(payload) { return { n: 10n }; }\n',
      /not JSON-serialisable: the result\.n is a BigInt/,
    ],
    [
      'javascript',
      'export async function handler(payload) { const a = { b: {} }; a.b.a = a; return a; }\n',
      /not JSON-serialisable: the result\.b\.a refers back to itself/,
    ],
    [
      'javascript',
      'export async function handler(payload) { return [1, undefined]; }\n',
      /not JSON-serialisable: the result\[1\] is undefined/,
    ],
    [
      'typescript',
      'export async function handler(payload: unknown) { return Number.POSITIVE_INFINITY; }\n',
      /not JSON-serialisable: the result is Infinity/,
    ],
  ] as const)('%s handler returns a non-JSON value: %j', async (language, code, reason) => {
    expectRejected(await validate(language, code), reason);
  });

  it('a non-JSON result rejects even on a default probe the sample payloads do not cover', async () => {
    const code =
      'async def handler(payload):\n    if "name" in payload:\n        return {"ok": True}\n    return {"seen": {1}}\n';
    expectRejected(
      await validate('python', code, [{ name: 'x' }]),
      /result for probe payload #1 is not JSON-serialisable/,
    );
  });

  it.each([
    [
      'python',
      'async def handler(payload):\n    raise SystemExit(0)\n',
      /tried to end the process on probe payload #1 \(line 2\): SystemExit/,
    ],
    [
      'javascript',
      'export async function handler(payload) {\n  process.exit(0);\n}\n',
      /tried to end the process on probe payload #1 \(line 2\): .*process\.exit\(0\) was called/,
    ],
  ] as const)('%s handler tries to end the process', async (language, code, reason) => {
    expectRejected(await validate(language, code), reason);
  });

  it.each([
    [
      'export async function handler(payload) { await new Promise(() => {}); }\n',
      /the handler's promise for sample payload #1 never settles: it awaits something that can never happen/,
    ],
    [
      'await new Promise(() => {});\nexport async function handler(payload) { return 1; }\n',
      /importing the task file awaits a promise that never settles/,
    ],
  ])('JavaScript awaits a promise that never settles: %j', async (code, reason) => {
    expectRejected(await validate('javascript', code, [{}]), reason);
  });

  it('the handler prints a forged verdict through the real stdout object', async () => {
    const code =
      'import sys\n\nasync def handler(payload):\n    sys.__stdout__.write("\\x00WARDEN_RESULT 0 {\\"ok\\": true, \\"results\\": []}\\n")\n    return 1\n';
    const outcome = await validate('python', code);
    expectRejected(
      outcome,
      /the task printed Warden's verdict marker \(an attempt to forge the validation result\)/,
    );
    expect(outcome.reasons).toHaveLength(1);
  });

  it.each([
    [
      'python',
      'print(\'\\x00WARDEN_RESULT x {"ok": true, "results": []}\')\n\ndef handler(payload):\n    return 1\n',
    ],
    [
      'javascript',
      'process.stdout.write(\'\\0WARDEN_RESULT x {"ok":true,"results":[]}\\n\');\nexport function handler(payload) { return 1; }\n',
    ],
  ] as const)('%s prints a forged "ok" verdict to hide a sync handler', async (language, code) => {
    const outcome = await validate(language, code);
    expectRejected(outcome, /an attempt to forge the validation result/);
    // The harness's own finding still comes through its private channel.
    expect(outcome.reasons.join('\n')).toMatch(/handler is not async/);
  });

  it.each([
    ['export async function handler(payload: unknown) {\n  return <div>;\n}\n', /syntax error \(line 2\)/],
    [
      'export const handler = 1;\nexport const handler = async (p: unknown) => 2;\n',
      /the TypeScript does not compile: line 2, column 14: Multiple exports with the same name "handler"/,
    ],
  ])('a TypeScript file does not parse or compile: %j', async (code, reason) => {
    const counting = countingEngine();
    const outcome = await validateTaskFile(
      { engine: counting.engine, policy: {} },
      { code, language: LANGUAGES.typescript },
    );
    expectRejected(outcome, reason);
    expect(outcome.usage).toBeUndefined();
    expect(counting.runs()).toBe(0);
  });
});

describe('runTask', () => {
  it('fails with the exception, its line and the logs when the handler raises', async () => {
    const code =
      'async def handler(payload):\n    print("looking up", payload)\n    return payload["missing"]\n';
    const run = await runTask(deps, { code, language: LANGUAGES.python, payload: { a: 1 } });
    expect(run).toMatchObject({ status: 'failed', verdict: 'success' });
    expect(run.error).toMatch(/raised on the payload \(line 3\): KeyError: 'missing'/);
    expect(run.logs).toContain("looking up {'a': 1}");
    expect(run.result).toBeUndefined();
  });

  it('stops a handler at its limits and says why', async () => {
    const code =
      'function keepGoing() { return true; }\nexport async function handler(payload) { while (keepGoing()); }\n';
    const run = await runTask(deps, {
      code,
      language: LANGUAGES.javascript,
      payload: {},
      limits: { wallTimeMs: 3_000, cpuTimeMs: 500 },
    });
    expect(run).toMatchObject({ status: 'failed', verdict: 'timeout' });
    expect(run.error).toMatch(/timed out: used its 0\.5 s of CPU time/);
  });

  it('fails on a result that is not JSON', async () => {
    const run = await runTask(deps, {
      code: 'export async function handler(p) { return () => 1; }\n',
      language: LANGUAGES.javascript,
      payload: {},
    });
    expect(run.status).toBe('failed');
    expect(run.error).toMatch(/not JSON-serialisable: the result is a function/);
  });

  it('returns null and large results intact', async () => {
    const code =
      'async def handler(payload):\n    return None if payload["kind"] == "none" else ("x" * payload["n"])\n';
    const none = await runTask(deps, { code, language: LANGUAGES.python, payload: { kind: 'none' } });
    expect(none).toMatchObject({ status: 'succeeded', result: null });
    const big = await runTask(deps, {
      code,
      language: LANGUAGES.python,
      payload: { kind: 'big', n: 200_000 },
    });
    expect(big.status).toBe('succeeded');
    expect(big.result).toBe('x'.repeat(200_000));
  });

  it('refuses a payload that is not JSON without running anything', async () => {
    const counting = countingEngine();
    const run = await runTask(
      { engine: counting.engine },
      { code: GOOD.python, language: LANGUAGES.python, payload: undefined },
    );
    expect(run).toMatchObject({ status: 'failed', error: expect.stringMatching(/payload is not JSON/) });
    expect(counting.runs()).toBe(0);
  });
});

describe('a sandbox failure', () => {
  const failing: Engine = {
    ...engine,
    run: async (): Promise<RunResult> =>
      resultWithoutRun('bwrap', 'error', { error: 'bwrap could not start' }),
  };

  it('throws instead of rejecting the user file (Warden retries its own faults)', async () => {
    await expect(
      validateTaskFile({ engine: failing, policy: {} }, { code: GOOD.python, language: LANGUAGES.python }),
    ).rejects.toBeInstanceOf(SandboxFailureError);
    await expect(
      runTask({ engine: failing }, { code: GOOD.python, language: LANGUAGES.python, payload: {} }),
    ).rejects.toThrow(/bwrap could not start/);
  });
});
