import { readFileSync } from 'node:fs';
import { ConfigError, loadConfig, type ConfigFlag } from '../config/load.js';
import type { WardenConfig } from '../config/schema.js';
import { findLanguage, languageForFile, type Language } from '../languages/index.js';

/** Exit codes shared by every command. */
export const EXIT = { ok: 0, internal: 1, usage: 2, rejected: 3 } as const;

export class UsageError extends Error {}

/** The config file (or the default), the environment, then `flags` given on the command line. */
export function readConfig(path: string | undefined, flags?: ConfigFlag[]): WardenConfig {
  try {
    return loadConfig({ path, flags });
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(err.message);
    throw err;
  }
}

export function readSource(file: string, lang: string | undefined): { code: string; language: Language } {
  const language = lang ? findLanguage(lang) : languageForFile(file);
  if (!language) {
    throw new UsageError(
      lang
        ? `unknown language ${JSON.stringify(lang)} (python, javascript, typescript)`
        : `cannot tell the language of ${file}: use --lang`,
    );
  }
  try {
    return { code: readFileSync(file, 'utf8'), language };
  } catch (err) {
    throw new UsageError(
      `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
}

export function positive(name: string, value: number | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isFinite(value) || value <= 0) throw new UsageError(`${name} must be a positive number`);
  return value;
}
