import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

/** `warden bench`: the benchmarks live in the repository's bench/ (TypeScript run through tsx). */
export async function benchCommand(): Promise<number> {
  const root = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
  const result = spawnSync('npx', ['tsx', join(root, 'bench', 'run.ts')], { cwd: root, stdio: 'inherit' });
  return result.status ?? 1;
}
