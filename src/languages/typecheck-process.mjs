// The type checker's own process (started by typecheck-worker.ts). Plain JavaScript so it loads the
// same way from dist/ and from a source checkout: the built checker when it sits beside this file,
// else the TypeScript source through tsx (vitest, WARDEN_FROM_SOURCE=1), whose loader is scoped to
// this import.
import { existsSync } from 'node:fs';
import { fileURLToPath, URL } from 'node:url';

const built = new URL('./typecheck.js', import.meta.url);
const { typeCheck } = existsSync(fileURLToPath(built))
  ? await import(built.href)
  : await (await import('tsx/esm/api')).tsImport('./typecheck.ts', import.meta.url);

process.on('message', ({ id, code }) => {
  try {
    process.send({ id, diagnostics: typeCheck(code) });
  } catch (err) {
    process.send({ id, error: err instanceof Error ? err.message : String(err) });
  }
});
// The service gone (its end of the channel closed): nothing left to check for.
process.on('disconnect', () => process.exit(0));
