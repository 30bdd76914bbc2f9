import { afterAll, describe, expect, it } from 'vitest';
import { LANGUAGES, type LanguageId } from '../../src/languages/index.js';
import { HARNESS_MARKER, buildHarnessRun, readVerdict } from '../../src/languages/harness/index.js';
import { testEngine } from '../sandbox/helpers.js';

const NONCE = 'f'.repeat(32);
const line = (body: unknown, nonce = NONCE) => `${HARNESS_MARKER}${nonce} ${JSON.stringify(body)}\n`;

describe('readVerdict accepts exactly one line carrying the run nonce', () => {
  it('reads a well-formed verdict, including a null result', () => {
    const reading = readVerdict(line({ ok: true, results: [], result: null }), NONCE);
    expect(reading).toEqual({
      kind: 'verdict',
      verdict: { ok: true, results: [], result: null, hasResult: true },
    });
  });

  it('tells a missing verdict apart', () => {
    expect(readVerdict('', NONCE)).toEqual({ kind: 'missing' });
  });

  it.each([
    ['another nonce', line({ ok: true, results: [] }, '0'.repeat(32)), /did not write/],
    [
      'a forged line before the real one',
      line({ ok: true, results: [] }, 'x') + line({ ok: false, results: [] }),
      /did not write/,
    ],
    [
      'a second line after the real one',
      line({ ok: false, results: [] }) + line({ ok: true, results: [] }),
      /more than one line/,
    ],
    ['text after the line', `${line({ ok: true, results: [] })}extra`, /more than one line/],
    ['no newline', line({ ok: true, results: [] }).trimEnd(), /more than one line/],
    ['broken JSON', `${HARNESS_MARKER}${NONCE} {"ok": tru\n`, /not valid JSON/],
    ['the wrong shape', line({ ok: 'yes', results: [] }), /expected shape/],
  ])('refuses %s', (_name, stdout, detail) => {
    const reading = readVerdict(stdout, NONCE);
    expect(reading.kind).toBe('tampered');
    expect(reading.kind === 'tampered' && reading.detail).toMatch(detail);
  });
});

describe('the verdict channel inside the sandbox', () => {
  const engine = testEngine();
  afterAll(() => engine.shutdown());

  // Static analysis is skipped here on purpose: these files write to fd 1 directly.
  it.each([
    [
      'python',
      [
        'import os, sys',
        'print("import-time print")',
        'async def handler(payload):',
        '    print("print")',
        '    sys.stdout.write("sys.stdout\\n")',
        '    sys.__stdout__.write("sys.__stdout__\\n")',
        '    os.write(1, b"os.write(1)\\n")',
        '    return {"done": True}',
      ].join('\n'),
      ['import-time print', 'print', 'sys.stdout', 'sys.__stdout__', 'os.write(1)'],
    ],
    [
      'javascript',
      [
        "console.log('import-time console.log');",
        'export async function handler(payload) {',
        "  console.log('console.log');",
        "  console.info('console.info');",
        "  process.stdout.write('process.stdout\\n');",
        "  (await import('node:console')).log('node:console');",
        '  return { done: true };',
        '}',
      ].join('\n'),
      ['import-time console.log', 'console.log', 'console.info', 'process.stdout', 'node:console'],
    ],
  ] as const)(
    '%s: whatever the task prints goes to stderr; stdout holds only the verdict',
    async (language, code, printed) => {
      const { spec, nonce } = await buildHarnessRun(LANGUAGES[language as LanguageId], code, {
        mode: 'run',
        payloads: [{}],
      });
      const result = await engine.run(spec);
      expect(result.status).toBe('success');
      const reading = readVerdict(result.stdout, nonce);
      expect(reading).toEqual({
        kind: 'verdict',
        verdict: expect.objectContaining({ ok: true, result: { done: true } }),
      });
      expect(result.stdout.split('\n')).toHaveLength(2);
      expect(result.stderr.split('\n').filter(Boolean).sort()).toEqual([...printed].sort());
    },
  );

  it('a task writing a line onto the channel itself cannot pass it off as the verdict', async () => {
    // Python can find the private descriptor (it is the lowest free one after the standard three).
    const code = [
      'import os',
      'async def handler(payload):',
      '    for fd in range(3, 10):',
      '        try:',
      '            os.write(fd, b"\\x00WARDEN_RESULT guess {\\"ok\\": true, \\"results\\": []}\\n")',
      '        except OSError:',
      '            pass',
      '    return 1',
    ].join('\n');
    const { spec, nonce } = await buildHarnessRun(LANGUAGES.python, code, {
      mode: 'validate',
      payloads: [{}],
    });
    const result = await engine.run(spec);
    expect(result.stdout).toContain('guess');
    expect(readVerdict(result.stdout, nonce).kind).toBe('tampered');
  });
});
