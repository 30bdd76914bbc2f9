import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExecutionResponse } from '../../src/runner/index.js';
import { fitJson, fitPair, jsonBytes } from '../../src/runner/json-budget.js';
import { getExecution } from '../../src/store/executions.js';
import { openStore, type Store } from '../../src/store/db.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

describe('JSON size of outputs', () => {
  const samples = [
    '',
    'plain ascii',
    '\u0001\u0000\u001f',
    '\n\t\r\b\f"\\',
    'é日本',
    '𝄞 and 🎉',
    '\ud800 lone high',
    'lone low \udc00',
    '\udc00\ud800',
  ];

  it('measures exactly what JSON.stringify sends', () => {
    for (const s of samples) expect(jsonBytes(s)).toBe(Buffer.byteLength(JSON.stringify(s)));
  });

  it('cuts to the longest prefix that fits, never inside a surrogate pair', () => {
    for (const s of samples) {
      for (let max = 2; max <= jsonBytes(s) + 1; max++) {
        const { text, cut } = fitJson(s, max);
        expect(s.startsWith(text)).toBe(true);
        expect(jsonBytes(text)).toBeLessThanOrEqual(max);
        expect(cut).toBe(text !== s);
        if (cut)
          expect(
            jsonBytes(s.slice(0, text.length + (s.codePointAt(text.length)! > 0xffff ? 2 : 1))),
          ).toBeGreaterThan(max);
      }
    }
  });

  it('shares a budget between stdout and stderr, giving unused room to the other', () => {
    const big = '\u0001'.repeat(10_000);
    const both = fitPair(big, big, 6002);
    expect(both.cut).toBe(true);
    expect(jsonBytes(both.first) + jsonBytes(both.second)).toBeLessThanOrEqual(6002);
    expect(jsonBytes(both.first)).toBeGreaterThanOrEqual(2900);
    const small = fitPair(big, 'err', 6002);
    expect(small.second).toBe('err');
    expect(jsonBytes(small.first)).toBeGreaterThan(5900);
    expect(fitPair('a', 'b', 100)).toEqual({ first: 'a', second: 'b', cut: false });
  });
});

/**
 * The amplification attack: 50 cases, each writing just under the sandbox's 1 MiB output cap of
 * control characters (6 bytes each in JSON) to both stdout and stderr: ≈ 600 MB of JSON uncut.
 */
describe('an answer bigger than server.maxResponseBytes', () => {
  let t: TestServer;
  let store: Store;
  const maxResponseBytes = 4 * 1024 * 1024;

  beforeAll(async () => {
    t = await startTestServer({ server: { maxResponseBytes, requestTimeoutMs: 120_000 } });
    store = await openStore(t.config);
  });
  afterAll(async () => {
    await store?.close();
    await t?.close();
  });

  it('is cut and flagged, and answer, stored row and worker stay within the limit', async () => {
    const res = await fetch(`${t.url}/execute`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        code: 'import sys\nn = 1024 * 1024 - 1\nsys.stdout.write(chr(1) * n)\nsys.stdout.flush()\nsys.stderr.write(chr(2) * n)',
        language: 'python',
        test_cases: Array.from({ length: 50 }, (_, i) => ({
          name: `flood${i}`,
          input_data: '',
          expected_output: '',
        })),
      }),
    });
    const text = await res.text();
    expect(res.status).toBe(200);
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(maxResponseBytes);
    const response = JSON.parse(text) as ExecutionResponse;
    const id = response.request_id;

    expect(response.test_results).toHaveLength(50);
    expect(response.truncated).toBe(true);
    for (const r of response.test_results) {
      expect(r.truncated).toBe(true);
      expect(r.status).toBe('success');
      expect(r.actual_output.length).toBeGreaterThan(0);
      expect(r.actual_output).toBe('\u0001'.repeat(r.actual_output.length));
    }
    expect(response.errors).toContain(
      'flood7: output was cut to fit the answer’s size limit (server.maxResponseBytes)',
    );
    expect(response.errors.some((e) => e.startsWith('flood7: \u0002\u0002'))).toBe(true);

    const row = await getExecution(store.db, id);
    expect(row?.status).toBe('done');
    expect(row?.response).toEqual(response);
  }, 180_000);
});
