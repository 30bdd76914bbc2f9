import { posix } from 'node:path';
import type { SandboxFile } from './types.js';

export class InvalidFileError extends Error {}

/**
 * File names come from users: only plain relative paths inside the working dir are accepted, so
 * nothing can be written over the runtime or outside the sandbox's own directory.
 */
export function validateFiles(
  files: SandboxFile[],
): { path: string; content: Buffer; executable: boolean }[] {
  const seen = new Set<string>();
  return files.map((f) => {
    const normal = posix.normalize(f.path);
    if (
      f.path.length === 0 ||
      f.path.includes('\0') ||
      posix.isAbsolute(f.path) ||
      normal === '.' ||
      normal.startsWith('../') ||
      normal === '..'
    ) {
      throw new InvalidFileError(
        `invalid file name ${JSON.stringify(f.path)}: use a plain name inside the working dir`,
      );
    }
    if (seen.has(normal)) throw new InvalidFileError(`file ${JSON.stringify(f.path)} given twice`);
    seen.add(normal);
    const content = typeof f.content === 'string' ? Buffer.from(f.content, 'utf8') : Buffer.from(f.content);
    return { path: normal, content, executable: f.executable ?? false };
  });
}
