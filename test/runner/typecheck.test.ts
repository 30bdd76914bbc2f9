import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { typeCheck } from '../../src/languages/typecheck.js';
import { stopTypeChecker, typeCheckApart, typeCheckerPid } from '../../src/languages/typecheck-worker.js';

/** The TypeScript type-check stage alone, and what `warden run` / `warden validate` exit with. */
describe('typeCheck', () => {
  it('reports each type error with its 1-based line and column, in source order', () => {
    const found = typeCheck(
      'const ok = 1;\nconst x: number = "a";\nfunction g(a: number) {}\ng(1, 2);\ng("b");\n',
    );
    expect(found.map((d) => [d.line, d.column, d.message.slice(0, 6)])).toEqual([
      [2, 7, 'TS2322'],
      [4, 6, 'TS2554'],
      [5, 3, 'TS2345'],
    ]);
  });

  it('accepts everyday scripts: untyped parameters, Node globals, any module, top-level await', () => {
    const code = [
      "import { join } from 'node:path';",
      "const os = require('os');",
      'function twice(x) { return x * 2; }',
      'const line: string | undefined = process.argv[2];',
      'await new Promise((r) => setTimeout(r, 1));',
      'console.log(twice(2), join("a", "b"), line, os, process.env.HOME, Buffer, new URL("http://x"));',
      'process.exit(0);',
    ].join('\n');
    expect(typeCheck(code)).toEqual([]);
  });

  it('does not see declarations Node does not give (no DOM)', () => {
    expect(typeCheck('document.title = "x";\n').map((d) => d.message)).toEqual([
      expect.stringMatching(/^TS2584: Cannot find name 'document'/),
    ]);
  });
});

describe('typeCheckApart (the check in a process of its own)', () => {
  const TYPO = 'const x: number = "a";\n';
  afterAll(() => stopTypeChecker());

  it('gives what typeCheck gives, while the event loop keeps turning', async () => {
    await stopTypeChecker(); // cold: the compiler's load would be the longest block
    let turns = 0;
    let pending = true;
    const spin = () => {
      turns++;
      if (pending) setImmediate(spin);
    };
    setImmediate(spin);
    const found = await typeCheckApart(TYPO);
    pending = false;
    expect(found).toEqual(typeCheck(TYPO));
    expect(turns).toBeGreaterThan(1);
  });

  it('serves concurrent checks, each with its own answer', async () => {
    const codes = ['const a: string = 1;\n', 'const ok = 1;\n', TYPO];
    const found = await Promise.all(codes.map((c) => typeCheckApart(c)));
    expect(found).toEqual(codes.map((c) => typeCheck(c)));
  });

  it('a check that does not answer in time is "no type problems", told to onGiveUp; the next check works', async () => {
    await stopTypeChecker(); // a cold checker cannot answer within 1 ms
    const reasons: string[] = [];
    const found = await typeCheckApart(TYPO, { timeoutMs: 1, onGiveUp: (e) => reasons.push(e.message) });
    expect(found).toEqual([]);
    expect(reasons).toEqual(['the type check took longer than 1 ms']);
    expect(await typeCheckApart(TYPO)).toEqual(typeCheck(TYPO));
  });

  it('a checker that ends mid-check gives the check up; the next check starts a new one', async () => {
    const reasons: string[] = [];
    const lost = typeCheckApart(TYPO, { onGiveUp: (e) => reasons.push(e.message) });
    await stopTypeChecker();
    expect(await lost).toEqual([]);
    expect(reasons).toEqual(['the type checker was stopped']);
    expect(await typeCheckApart(TYPO)).toEqual(typeCheck(TYPO));
  });

  it('runs apart from the caller (the compiler is not in its memory); killed from outside, it is replaced', async () => {
    expect(await typeCheckApart(TYPO)).toEqual(typeCheck(TYPO));
    const pid = typeCheckerPid()!;
    expect(pid).not.toBe(process.pid);
    expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8')).toContain('typecheck-process.mjs');
    const reasons: string[] = [];
    const large = Array.from({ length: 2000 }, (_, i) => `const v${i}: number = ${i};`).join('\n');
    const lost = typeCheckApart(large, { onGiveUp: (e) => reasons.push(e.message) });
    process.kill(pid, 'SIGKILL');
    expect(await lost).toEqual([]);
    expect(reasons).toEqual(['the type checker exited with SIGKILL']);
    expect(await typeCheckApart(TYPO)).toEqual(typeCheck(TYPO));
    expect(typeCheckerPid()).not.toBe(pid);
  });
});

describe('warden CLI on code that does not compile', () => {
  const BIN = fileURLToPath(new URL('../../bin/warden.js', import.meta.url));
  const dir = mkdtempSync(join(tmpdir(), 'warden-compile-'));
  const warden = (...args: string[]) => {
    const r = spawnSync(process.execPath, [BIN, ...args], {
      encoding: 'utf8',
      env: { ...process.env, WARDEN_FROM_SOURCE: '1' },
      timeout: 60_000,
    });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const typo = join(dir, 'typo.ts');
  writeFileSync(typo, 'const n: number = ;\n');
  const typeError = join(dir, 'type-error.ts');
  writeFileSync(typeError, 'const n: number = "a";\nconsole.log(n);\n');
  const checked = join(dir, 'warden.yaml');
  writeFileSync(checked, `dataDir: ${join(dir, 'data')}\nlanguages:\n  typescript: { typecheck: true }\n`);

  it('warden run: exit 0 (Warden worked), verdict compile_error with the line', () => {
    const r = warden('run', typo, '--json');
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result.status).toBe('compile_error');
    expect(result.stderr).toMatch(/^does not compile: line 1, column \d+: /);
    expect(result.violations).toEqual([]);
  });

  it('warden run with typecheck on: a type error is compile_error with its TS code, and the CLI exits', () => {
    const r = warden('run', typeError, '--json', '--config', checked);
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result.status).toBe('compile_error');
    expect(result.stderr).toMatch(/^does not compile: line 1, column 7: TS2322: /);
  });

  it('warden validate: exit 3, the syntax_error finding', () => {
    const r = warden('validate', typo, '--json');
    expect(r.code).toBe(3);
    expect(JSON.parse(r.stdout).violations).toEqual([
      expect.objectContaining({ rule: 'syntax_error', line: 1 }),
    ]);
  });
});
