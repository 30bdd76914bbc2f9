import { createRequire } from 'node:module';
import semver from 'semver';
import { LANGUAGES, languageVersion, type Language, type LanguageId } from '../../languages/index.js';

/**
 * Warden's languages as Piston's runtimes: Piston's names, its aliases beside Warden's own, and a
 * semantic version for its version ranges (`*`, `3.x`, `>=20`, or an exact `3.11.2`).
 */

export interface PistonRuntime {
  language: LanguageId;
  version: string;
  aliases: string[];
  /** Piston names the runtime only where a language has several (node for JavaScript). */
  runtime?: string;
  lang: Language;
}

const typescriptVersion = (): string =>
  (createRequire(import.meta.url)('typescript/package.json') as { version: string }).version;

/** What Piston's packages call each language (python 3.12, node 20, typescript 5), by version. */
function pistonAliases(id: LanguageId, version: semver.SemVer): string[] {
  switch (id) {
    case 'python':
      return ['py', 'py3', 'python3', `python3.${version.minor}`];
    case 'javascript':
      return ['node-javascript', 'node-js', 'javascript', 'js'];
    case 'typescript':
      return ['ts', 'node-ts', 'tsc', `typescript${version.major}`, `ts${version.major}`];
  }
}

let cached: PistonRuntime[] | undefined;

/** The runtimes, asked of the binaries once (their versions do not change while Warden runs). */
export function pistonRuntimes(): PistonRuntime[] {
  cached ??= Object.values(LANGUAGES).map((lang) => {
    // TypeScript is versioned by its compiler, as Piston's typescript package is (esbuild transpiles,
    // typescript type-checks, node runs).
    const raw = lang.id === 'typescript' ? typescriptVersion() : languageVersion(lang);
    const version = semver.coerce(raw) ?? new semver.SemVer('0.0.0');
    const aliases = [...new Set([...pistonAliases(lang.id, version), ...lang.aliases])].filter(
      (a) => a !== lang.id,
    );
    return {
      language: lang.id,
      version: version.version,
      aliases,
      ...(lang.id === 'javascript' && { runtime: 'node' }),
      lang,
    };
  });
  return cached;
}

/** The runtime a Piston request names (language or alias, case as given, and a semver range). */
export function findRuntime(language: string, range: string): PistonRuntime | undefined {
  return pistonRuntimes().find(
    (r) => (r.language === language || r.aliases.includes(language)) && semver.satisfies(r.version, range),
  );
}
