import type { Node } from 'web-tree-sitter';

/**
 * Name bindings seen in one file, used to see through aliases (`import os as o`, `s = os.system`,
 * `const { exec } = require('child_process')`).
 *
 * The tracking is deliberately flow- and scope-insensitive: a name may have several candidate
 * meanings and every one of them is checked. That errs towards reporting, which is the right side
 * to err on for code that is about to run on our machines.
 */
export class Bindings {
  /** Names bound by an import statement, to the absolute dotted path they stand for. */
  readonly imports = new Map<string, { chain: string[]; topLevel: boolean }[]>();
  /** Names bound by an assignment, to the expression (plus member path, for destructuring) they take. */
  readonly assigns = new Map<string, { value: Node; suffix: string[] }[]>();
  /** How often a shadowable builtin name is bound (import, assignment, def, parameter, del …). */
  readonly bindingCounts = new Map<string, number>();
  /** Modules imported with `from m import *`. */
  readonly starModules: string[] = [];

  addImport(name: string, chain: string[], topLevel: boolean): void {
    const list = this.imports.get(name);
    if (list) list.push({ chain, topLevel });
    else this.imports.set(name, [{ chain, topLevel }]);
  }

  addAssign(name: string, value: Node, suffix: string[] = []): void {
    const list = this.assigns.get(name);
    if (list) list.push({ value, suffix });
    else this.assigns.set(name, [{ value, suffix }]);
  }

  countBinding(name: string): void {
    this.bindingCounts.set(name, (this.bindingCounts.get(name) ?? 0) + 1);
  }

  isAlias(name: string): boolean {
    return this.imports.has(name) || this.assigns.has(name);
  }
}

/** Single-assignment constants, for folding `N = 10**10; range(N)`. */
export class Constants {
  private readonly values = new Map<string, Node | null>();

  assign(name: string, value: Node | null): void {
    // A second assignment makes the value unknown.
    this.values.set(name, this.values.has(name) ? null : value);
  }

  get(name: string): Node | null {
    return this.values.get(name) ?? null;
  }
}

// Deep enough for any alias chain a person would write by hand (and for ones written to evade
// us); the expansion budget bounds cycles and fan-out.
const MAX_DEPTH = 64;
const MAX_EXPANSIONS = 256;

export type ChainOf = (node: Node, depth: number) => string[] | null;

/**
 * Turns a syntactic chain (`['o', 'system']`) into the qualified names it may denote
 * (`['os.system']`). The empty string stands for the global object itself (JavaScript).
 */
export class Resolver {
  private budget = 0;

  constructor(
    private readonly bindings: Bindings,
    private readonly chainOf: ChainOf,
    private readonly normalize: (chain: string[]) => string,
    /** Builtin names that an import may shadow only if nothing else rebinds them. */
    private readonly shadowable: ReadonlySet<string>,
  ) {}

  resolve(chain: string[], depth = 0): string[] {
    this.budget = MAX_EXPANSIONS;
    const out = new Set<string>();
    this.expand(chain, depth, out);
    return [...out];
  }

  private expand(chain: string[], depth: number, out: Set<string>): void {
    if (chain.length === 0) {
      out.add('');
      return;
    }
    const root = chain[0] as string;
    const rest = chain.slice(1);
    if (depth > MAX_DEPTH || this.budget-- <= 0) {
      out.add(this.normalize(chain));
      return;
    }
    const imports = this.bindings.imports.get(root);
    let authoritative = false;
    if (imports) {
      for (const imp of imports) out.add(this.normalize([...imp.chain, ...rest]));
      // An import replaces a builtin only when it is the name's one and only binding: otherwise a
      // local `from re import compile` or a later `del compile` could bring the builtin back.
      authoritative =
        imports.length === 1 &&
        (imports[0]?.topLevel ?? false) &&
        (!this.shadowable.has(root) || (this.bindings.bindingCounts.get(root) ?? 1) <= 1);
    }
    const assigns = this.bindings.assigns.get(root);
    if (assigns) {
      for (const { value, suffix } of assigns) {
        const target = this.chainOf(value, depth + 1);
        if (target) this.expand([...target, ...suffix, ...rest], depth + 1, out);
      }
    }
    if (authoritative) return;
    for (const mod of this.bindings.starModules) out.add(this.normalize([mod, ...chain]));
    out.add(this.normalize(chain));
  }
}
