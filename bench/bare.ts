import { spawn } from 'node:child_process';

/**
 * The same program started bare, for ratios: a clean environment and absolute paths, as the sandbox
 * has (an inherited NODE_EXTRA_CA_CERTS alone makes bare node twice as slow).
 */
export function runBare(argv: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      env: { PATH: '/usr/bin:/bin' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    child.stdout.resume();
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${argv[0]} exited ${code}`))));
  });
}
