import { existsSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { parse } from 'shell-quote';

/**
 * A job's command line becomes argv without any shell: quotes and backslashes group words as a shell
 * would, but nothing is expanded or interpreted. Operators (`;`, `|`, `&&`, `>`), globs, variables and
 * substitutions would need a shell to mean anything, so they are refused rather than passed literally.
 */

export class CommandError extends Error {}

const MAX_ARGS = 1024;

/** A sentinel for `$NAME`: shell-quote then returns it as an object, which is refused below. */
const noVariables = (name: string) => ({ op: 'variable', name });

function describeToken(token: object): string {
  if ('comment' in token) return 'a comment (#)';
  const t = token as { op?: string; pattern?: string; name?: string };
  if (t.op === 'glob') return `the glob ${JSON.stringify(t.pattern)}`;
  if (t.op === 'variable') return t.name ? `the variable $${t.name}` : 'a substitution ($…)';
  return `the shell operator ${JSON.stringify(t.op)}`;
}

export function parseCommand(command: string): string[] {
  if (command.includes('\0')) throw new CommandError('the command contains a NUL byte');
  const argv: string[] = [];
  for (const token of parse(command, noVariables)) {
    if (typeof token !== 'string') {
      throw new CommandError(
        `${describeToken(token)} needs a shell, and jobs run without one: pass plain arguments (quote them if they contain such characters), or use the program's own options`,
      );
    }
    argv.push(token);
  }
  if (argv.length === 0 || argv[0] === '') throw new CommandError('the command is empty');
  if (argv.length > MAX_ARGS) throw new CommandError(`the command has more than ${MAX_ARGS} arguments`);
  return argv;
}

/** Allowed programs by name and by absolute path, each mapped to the absolute path that runs. */
export class CommandAllowList {
  private readonly byName = new Map<string, string>();
  private readonly paths = new Set<string>();

  constructor(entries: readonly string[], exists: (path: string) => boolean = existsSync) {
    for (const entry of entries) {
      const candidates = isAbsolute(entry) ? [entry] : [`/usr/bin/${entry}`, `/bin/${entry}`];
      const path = candidates.find(exists);
      if (!path) continue; // not installed on this host
      this.paths.add(path);
      if (!isAbsolute(entry)) this.byName.set(entry, path);
    }
  }

  /** The names that resolve here, for error messages and docs. */
  names(): string[] {
    return [...this.byName.keys()].sort();
  }

  /** argv with argv[0] replaced by the absolute path that runs; throws when it is not allowed. */
  resolve(argv: readonly string[]): string[] {
    const program = argv[0] ?? '';
    const path = isAbsolute(program)
      ? this.paths.has(program)
        ? program
        : undefined
      : program.includes('/')
        ? undefined
        : this.byName.get(program);
    if (!path) {
      throw new CommandError(
        `${JSON.stringify(program)} is not an allowed program; allowed: ${this.names().join(', ') || '(none)'}`,
      );
    }
    return [path, ...argv.slice(1)];
  }
}
