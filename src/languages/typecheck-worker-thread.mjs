// The type-check thread (started by typecheck-worker.ts). Plain JavaScript so it loads the same way
// from dist/ and from a source checkout: the built checker when it sits beside this file, else the
// TypeScript source through tsx (vitest, WARDEN_FROM_SOURCE=1), whose loader is scoped to this import.
import { existsSync } from 'node:fs';
import { fileURLToPath, URL } from 'node:url';
import { parentPort } from 'node:worker_threads';

const built = new URL('./typecheck.js', import.meta.url);
const { typeCheck } = existsSync(fileURLToPath(built))
  ? await import(built.href)
  : await (await import('tsx/esm/api')).tsImport('./typecheck.ts', import.meta.url);

parentPort.on('message', ({ id, code }) => {
  try {
    parentPort.postMessage({ id, diagnostics: typeCheck(code) });
  } catch (err) {
    parentPort.postMessage({ id, error: err instanceof Error ? err.message : String(err) });
  }
});
