import type { Node } from 'web-tree-sitter';
import { textOf, type AnalysisInput } from './common.js';
import { Bindings, Constants, Resolver } from './resolve.js';
import type { RuleId } from './rules.js';

/** Bound on recursion through nested expressions, so that crafted input cannot overflow the stack. */
export const MAX_NESTING = 64;
export const MAX_BODY_NESTING = 400;

/** An identifier met by the tree walk, with its name decoded once. */
export interface Ident {
  node: Node;
  name: string;
}

/** An assignment `name = value` that may turn out to be an alias of something dangerous. */
interface PendingAssign {
  name: string;
  value: Node;
  /** Member path, for destructuring (`const { exec } = …`). */
  suffix: string[] | undefined;
  /** The value's offsets, read once. */
  start: number;
  end: number;
}

/**
 * What the Python and JavaScript analysers share: alias tracking, single-assignment constants and
 * the file's identifiers in document order, read once during the tree walk.
 */
export abstract class Analyzer<I extends Ident> {
  protected readonly bindings = new Bindings();
  protected readonly constants = new Constants();
  protected readonly resolver: Resolver;
  /** In document order (the tree walk visits them so). */
  protected readonly ids: I[] = [];
  /** Identifier names by start offset: reading them back costs no calls into wasm. */
  private readonly nameAt = new Map<number, string>();
  private readonly pendingAssigns: PendingAssign[] = [];

  constructor(
    protected readonly input: AnalysisInput,
    normalize: (chain: string[]) => string,
    /** Builtin names that an import may shadow only if nothing else rebinds them. */
    shadowable: ReadonlySet<string>,
  ) {
    this.resolver = new Resolver(
      this.bindings,
      (node, depth) => this.chainOf(node, depth),
      normalize,
      shadowable,
    );
  }

  /** The dotted path an expression denotes syntactically (`os.path.join` → ['os','path','join']). */
  protected abstract chainOf(node: Node, depth: number): string[] | null;

  /** Reports a use of the qualified name `q` if it is a dangerous one. */
  protected abstract checkRef(q: string, node: Node): void;

  /** The language's identifier spelling rules (escapes, normalisation). */
  protected abstract decodeName(text: string): string;

  protected add(rule: RuleId, node: Node, message: string): void {
    this.input.out.add(rule, node, message);
  }

  /** Decodes an identifier met by the tree walk and records its name. */
  protected readName(node: Node): string {
    const name = this.decodeName(textOf(this.input.src, node));
    this.nameAt.set(node.startIndex, name);
    return name;
  }

  protected nameOf(node: Node): string {
    return this.nameAt.get(node.startIndex) ?? this.decodeName(textOf(this.input.src, node));
  }

  /** Checks every qualified name that `expression` may denote, reporting at `at`. */
  protected checkChain(expression: Node, at: Node): void {
    const chain = this.chainOf(expression, 0);
    if (chain) for (const q of this.resolver.resolve(chain)) this.checkRef(q, at);
  }

  // ---- assignments -----------------------------------------------------------------------

  /** `name = value` (both grammars use the same field names). */
  protected assignment(node: Node): void {
    const left = node.childForFieldName('left');
    if (left?.type === 'identifier') this.assign(this.nameOf(left), node.childForFieldName('right'));
  }

  protected assign(name: string, value: Node | null): void {
    this.constants.assign(name, value);
    if (value) this.mayAlias(name, value);
  }

  /** Notes that `name` may stand for `value` (plus `suffix`); acceptAliases() decides. */
  protected mayAlias(name: string, value: Node, suffix?: string[]): void {
    this.pendingAssigns.push({ name, value, suffix, start: value.startIndex, end: value.endIndex });
  }

  /** Index of the first identifier starting at or after `start`. */
  private firstIdAt(start: number): number {
    let lo = 0;
    let hi = this.ids.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.ids[mid] as I).node.startIndex < start) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Whether any identifier inside [start, end) satisfies `test`, without calling into wasm per name. */
  protected someIdWithin(start: number, end: number, test: (id: I) => boolean): boolean {
    for (let i = this.firstIdAt(start); i < this.ids.length; i++) {
      const id = this.ids[i] as I;
      if (id.node.startIndex >= end) return false;
      if (test(id)) return true;
    }
    return false;
  }

  /**
   * Keeps only the assignments that can carry something dangerous (`x = __import__`, `s = os.system`,
   * `o = x` where x already is such an alias): `carries` tells from the value's [start, end). Accepting
   * one can make others interesting, so this repeats until nothing changes. Tracking every assignment
   * would make every later use of an ordinary variable cost a parent lookup.
   */
  protected acceptAliases(carries: (start: number, end: number) => boolean): void {
    let pending = this.pendingAssigns;
    for (let changed = true; changed && pending.length > 0;) {
      changed = false;
      pending = pending.filter((a) => {
        if (!carries(a.start, a.end)) return true;
        this.bindings.addAssign(a.name, a.value, a.suffix);
        changed = true;
        return false;
      });
    }
  }
}
