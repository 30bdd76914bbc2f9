import type { Node } from 'web-tree-sitter';
import {
  applyArithmetic,
  classifyPath,
  concatFolded,
  formatCount,
  importMessage,
  parseNumberLiteral,
  referenceMessage,
  showPath,
  textOf,
  type AnalysisInput,
  type FoldedString,
} from './common.js';
import type { Grammar, Role } from './grammar.js';
import { Bindings, Constants, Resolver } from './resolve.js';
import type { RuleId } from './rules.js';

/** Bound on recursion through nested expressions, so that crafted input cannot overflow the stack. */
export const MAX_NESTING = 64;
export const MAX_BODY_NESTING = 400;

/** An identifier met by the tree walk, with its name decoded once. */
export interface Ident {
  node: Node;
  name: string;
  type: string;
}

/** An identifier worth a look, with where it stands. */
export interface IdentRef extends Ident {
  parent: Node;
  role: Role;
}

/** A call's arguments: positional ones in order, keyword ones by name (Python). */
export interface Args {
  positional: Node[];
  keyword: Map<string, Node>;
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
 * The analyser for every language: one tree walk, alias tracking, single-assignment constants,
 * constant folding, name resolution, loops and the environment, all driven by a Grammar table.
 * A language adds only the checks no other language has (see grammars/).
 */
export abstract class Walker {
  protected readonly bindings = new Bindings();
  protected readonly constants = new Constants();
  protected readonly resolver: Resolver;
  /** In document order (the tree walk visits them so). */
  protected readonly ids: Ident[] = [];
  /** Identifier names by start offset: reading them back costs no calls into wasm. */
  private readonly nameAt = new Map<number, string>();
  private readonly pendingAssigns: PendingAssign[] = [];

  constructor(
    protected readonly input: AnalysisInput,
    protected readonly grammar: Grammar,
  ) {
    this.resolver = new Resolver(
      this.bindings,
      (node, depth) => this.chainOf(node, depth),
      grammar.normalize,
      grammar.shadowable,
    );
  }

  // ---- what a language adds --------------------------------------------------------------

  /** The language's identifier spelling rules (escapes, normalisation). */
  protected abstract decodeName(text: string): string;

  /** Handlers by node type run during the walk, before names are resolved (imports, assignments). */
  protected abstract readonly collectors: ReadonlyMap<string, (node: Node) => void>;

  /** Handlers by node type run after the walk, once every alias is known. */
  protected abstract readonly checkers: ReadonlyMap<string, (node: Node) => void>;

  /** Whether an identifier can matter at all (most names are skipped before any parent lookup). */
  protected abstract wantsIdentifier(id: Ident): boolean;

  /** Checks one identifier that wantsIdentifier() kept; `star` when a `from m import *` was seen. */
  protected abstract checkIdentifier(ref: IdentRef): void;

  /** Runs the check `kind` (from the grammar's callKinds) on a call whose callee may be `q`. */
  protected abstract checkCall(kind: string, q: string, call: Node, args: Args): void;

  /** String literals of the language (with their escapes and interpolations). */
  protected abstract foldLiteral(node: Node, depth: number): FoldedString | null;

  /** The text a call yields when it decodes a payload or a name (`base64.b64decode('…')`). */
  protected abstract foldCall(call: Node, depth: number): FoldedString | null;

  /** What a call returns when it is a module or attribute we can name (`__import__('os')`). */
  protected abstract callChain(call: Node, depth: number): string[] | null;

  /** Notes a binding of an interesting name (parameters, globals, user functions named like builtins). */
  protected noteBinding(_ref: IdentRef): void {}

  /** `base[key]` as a chain; languages with views (`sys.modules['os']`) refine it. */
  protected subscriptChain(base: string[], key: string): string[] {
    return [...base, key];
  }

  /** Whether a use of `q` (rule `rule`) counts here (a user's own `fetch` does not). */
  protected countsAsUse(_rule: RuleId, _q: string): boolean {
    return true;
  }

  /** Numeric forms beyond literals and operators (`Math.pow`). */
  protected foldNumberCall(_call: Node, _depth: number): number | null {
    return null;
  }

  /** Value ranges that carry an alias regardless of the names in them (`await import('fs')`). */
  protected carriesAlias(_start: number, _end: number): boolean {
    return false;
  }

  // ---- the walk --------------------------------------------------------------------------

  /** One walk over the tree: identifiers and bindings first, then the checks that need them. */
  run(root: Node): void {
    const g = this.grammar;
    const later: { node: Node; type: string }[] = [];
    // descendantsOfType runs the walk inside wasm, several times faster than a cursor stepped from
    // JavaScript; only the node types some check wants cross over.
    for (const node of root.descendantsOfType(g.walkTypes)) {
      const type = node.type;
      if (g.identifierTypes.has(type)) {
        this.ids.push({ node, name: this.readName(node), type });
        continue;
      }
      this.collectors.get(type)?.(node);
      if (this.checkers.has(type)) later.push({ node, type });
    }
    this.acceptAliases(
      (start, end) =>
        this.carriesAlias(start, end) ||
        this.someIdWithin(start, end, (id) => g.aliasCarriers.has(id.name) || this.bindings.isAlias(id.name)),
    );
    this.identifiers();
    for (const { node, type } of later) this.checkers.get(type)?.(node);
  }

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

  /** Reports a use of the qualified name `q` if it is a dangerous one. */
  protected checkRef(q: string, node: Node): void {
    const rule = this.grammar.refs.get(q);
    if (!rule || !this.countsAsUse(rule, q)) return;
    this.add(rule, node, referenceMessage(rule, q));
    if (this.grammar.environment.names.has(q) && this.readsWholeEnvironment(node)) {
      this.add('environment_dump', node, referenceMessage('environment_dump', q));
    }
  }

  protected checkImport(module: string, node: Node): void {
    const rule = this.moduleRule(module);
    if (rule) this.add(rule, node, importMessage(rule, module));
  }

  protected moduleRule(module: string): ReturnType<Grammar['modules']['get']> {
    const { modules, moduleSeparator } = this.grammar;
    const end = module.indexOf(moduleSeparator);
    return modules.get(module) ?? (end > 0 ? modules.get(module.slice(0, end)) : undefined);
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
      if ((this.ids[mid] as Ident).node.startIndex < start) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Whether any identifier inside [start, end) satisfies `test`, without calling into wasm per name. */
  protected someIdWithin(start: number, end: number, test: (id: Ident) => boolean): boolean {
    for (let i = this.firstIdAt(start); i < this.ids.length; i++) {
      const id = this.ids[i] as Ident;
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
  // ---- identifiers -----------------------------------------------------------------------

  protected fieldIs(parent: Node, field: string, node: Node): boolean {
    return parent.childForFieldName(field)?.id === node.id;
  }

  protected role(node: Node, parent: Node): Role {
    const g = this.grammar;
    const type = parent.type;
    const byField = g.fieldRoles.get(type);
    if (byField) {
      const operatorOk =
        byField.operator === undefined || parent.childForFieldName('operator')?.type === byField.operator;
      return operatorOk && this.fieldIs(parent, byField.field, node) ? byField.match : byField.other;
    }
    const fixed = g.fixedRoles.get(type);
    if (fixed) return fixed;
    return node.type === g.propertyIdentifier ? 'other' : 'reference';
  }

  /** Finds each interesting identifier's role (one parent lookup each), then checks them in order. */
  private identifiers(): void {
    const refs: IdentRef[] = [];
    for (const id of this.ids) {
      if (!this.wantsIdentifier(id)) continue;
      const parent = id.node.parent;
      if (!parent) continue;
      const ref: IdentRef = { ...id, parent, role: this.role(id.node, parent) };
      if (ref.role !== 'reference' && ref.role !== 'member') this.noteBinding(ref);
      refs.push(ref);
    }
    for (const ref of refs) this.checkIdentifier(ref);
  }

  // ---- expressions -----------------------------------------------------------------------

  /** Looks through parentheses and type wrappers, iteratively: `((((os)))).system` is os.system. */
  protected unwrap(node: Node): Node {
    const { unwrapFirst, unwrapLast } = this.grammar;
    let cur = node;
    for (;;) {
      const type = cur.type;
      const next = unwrapFirst.has(type)
        ? cur.firstNamedChild
        : unwrapLast.has(type)
          ? cur.lastNamedChild
          : null;
      if (!next) return cur;
      cur = next;
    }
  }

  /** The dotted path an expression denotes syntactically (`os.path.join` → ['os','path','join']). */
  protected chainOf(expression: Node, depth: number): string[] | null {
    if (depth > MAX_NESTING) return null;
    const g = this.grammar;
    const node = this.unwrap(expression);
    const type = node.type;
    if (type === g.identifier) {
      const name = this.nameOf(node);
      return g.globalObjects.has(name) && !this.bindings.isAlias(name) ? [] : [name];
    }
    if (type === g.member.type) {
      const object = node.childForFieldName(g.member.object);
      const property = node.childForFieldName(g.member.property);
      if (!object || property?.type !== g.member.propertyType) return null;
      const base = this.chainOf(object, depth + 1);
      return base ? [...base, this.nameOf(property)] : null;
    }
    if (type === g.subscript.type) {
      const object = node.childForFieldName(g.subscript.object);
      const index = node.childForFieldName(g.subscript.index);
      const key = index ? this.foldString(index) : null;
      if (!object || !key?.exact) return null;
      const base = this.chainOf(object, depth + 1);
      return base ? this.subscriptChain(base, key.value) : null;
    }
    if (type === g.call.type) return this.callChain(node, depth);
    if (type === g.await) {
      const inner = node.firstNamedChild;
      return inner ? this.chainOf(inner, depth + 1) : null;
    }
    return null;
  }

  protected args(call: Node): Args {
    const g = this.grammar.call;
    const positional: Node[] = [];
    const keyword = new Map<string, Node>();
    const list = call.childForFieldName(g.arguments);
    if (!list || list.type !== g.argumentList) return { positional, keyword };
    for (const arg of list.namedChildren) {
      const type = arg.type;
      if (type === 'comment') continue;
      if (type === g.keyword) {
        const name = arg.childForFieldName('name');
        const value = arg.childForFieldName('value');
        if (name && value) keyword.set(this.nameOf(name), value);
      } else if (g.splats.has(type)) {
        // Positions after a spread are unknown.
        if (g.stopAtSplat) break;
      } else {
        positional.push(arg);
      }
    }
    return { positional, keyword };
  }

  /** Folds string literals, `+` concatenation, decoding calls and single-assignment constants. */
  protected foldString(expression: Node, depth = 0): FoldedString | null {
    if (depth > MAX_NESTING) return null;
    const g = this.grammar;
    const node = this.unwrap(expression);
    const type = node.type;
    if (type === g.binary) {
      if (node.childForFieldName('operator')?.type !== '+') return null;
      const left = node.childForFieldName('left');
      const right = node.childForFieldName('right');
      return concatFolded(
        left ? this.foldString(left, depth + 1) : null,
        right ? this.foldString(right, depth + 1) : null,
      );
    }
    if (type === g.identifier) {
      const value = this.constants.get(this.nameOf(node));
      return value ? this.foldString(value, depth + 1) : null;
    }
    if (type === g.call.type) return this.foldCall(node, depth);
    return this.foldLiteral(node, depth);
  }

  /** Constant-folds numeric expressions: literals, arithmetic and single-assignment names. */
  protected foldNumber(expression: Node, depth = 0): number | null {
    if (depth > MAX_NESTING) return null;
    const g = this.grammar;
    const node = this.unwrap(expression);
    const type = node.type;
    if (g.numbers.has(type)) return parseNumberLiteral(textOf(this.input.src, node));
    if (g.booleansAreNumbers && (type === 'true' || type === 'false')) return type === 'true' ? 1 : 0;
    if (type === g.unary) {
      const op = node.childForFieldName('operator')?.type;
      const arg = node.childForFieldName('argument');
      const v = arg ? this.foldNumber(arg, depth + 1) : null;
      if (v === null) return null;
      return op === '-' ? -v : op === '+' ? v : op === '~' ? g.bitNot(v) : null;
    }
    if (type === g.binary) {
      const op = node.childForFieldName('operator')?.type;
      const left = node.childForFieldName('left');
      const right = node.childForFieldName('right');
      if (!op || !left || !right || g.unfoldedOperators.has(op)) return null;
      const a = this.foldNumber(left, depth + 1);
      const b = a === null ? null : this.foldNumber(right, depth + 1);
      return a === null || b === null ? null : applyArithmetic(op, a, b);
    }
    if (type === g.identifier) {
      const value = this.constants.get(this.nameOf(node));
      return value ? this.foldNumber(value, depth + 1) : null;
    }
    if (type === g.call.type) return this.foldNumberCall(node, depth);
    return null;
  }

  protected truthy(expression: Node, depth = 0): boolean | null {
    if (depth > MAX_NESTING) return null;
    const g = this.grammar;
    const node = this.unwrap(expression);
    const type = node.type;
    if (g.trues.has(type)) return true;
    if (g.falses.has(type)) return false;
    if (g.numbers.has(type)) {
      const v = this.foldNumber(node);
      return v === null ? null : v !== 0 && !Number.isNaN(v);
    }
    if (g.strings.has(type)) {
      const s = this.foldString(node);
      return s?.exact ? s.value.length > 0 : null;
    }
    if (type === g.not.type) {
      if (g.not.operator !== undefined && node.childForFieldName('operator')?.type !== g.not.operator) {
        return null;
      }
      const arg = node.childForFieldName('argument');
      const v = arg ? this.truthy(arg, depth + 1) : null;
      return v === null ? null : !v;
    }
    if (type === g.identifier) {
      // `running = True` assigned once and never again: the loop cannot stop through it.
      const value = this.constants.get(this.nameOf(node));
      return value ? this.truthy(value, depth + 1) : null;
    }
    return null;
  }

  // ---- calls -----------------------------------------------------------------------------

  /** The last name of a callee: `f`, `a.f`, `a['f']`; null when it cannot be named. */
  protected calleeName(fn: Node): string | null {
    const g = this.grammar;
    const target = this.unwrap(fn);
    const type = target.type;
    if (type === g.identifier) return this.nameOf(target);
    if (type === g.member.type) {
      const property = target.childForFieldName(g.member.property);
      return property ? this.nameOf(property) : null;
    }
    if (type === g.subscript.type) {
      const index = target.childForFieldName(g.subscript.index);
      const key = index ? this.foldString(index) : null;
      return key?.exact ? key.value : null;
    }
    return null;
  }

  /** Resolves a call's callee (if its last name is one a check wants) and runs the checks for it. */
  protected call(node: Node, fn: Node, args?: Args): void {
    const last = this.calleeName(fn);
    if (last === null || (!this.grammar.callNames.has(last) && !this.bindings.isAlias(last))) return;
    const chain = this.chainOf(fn, 0);
    if (!chain) return;
    let callArgs = args;
    for (const q of this.resolver.resolve(chain)) {
      const kind = this.grammar.callKinds.get(q);
      if (kind) this.checkCall(kind, q, node, (callArgs ??= this.args(node)));
    }
  }

  /**
   * Checks the paths among a call's first two arguments; given `dynamic` (how the call's message
   * names what it does with the path), a computed first path too. A number is a file descriptor
   * (0 is the run's own stdin).
   */
  protected checkPaths(q: string, args: Node[], dynamic?: 'opens' | 'uses'): void {
    const [first, second] = args;
    if (!first) return;
    const verb = dynamic ?? 'uses';
    for (const arg of second ? [first, second] : [first]) {
      const path = this.foldString(arg);
      if (path && classifyPath(path.value) === 'outside') {
        this.add(
          'file_access',
          arg,
          `${q}() ${verb} "${showPath(path.value)}", which is outside the working directory`,
        );
        if (dynamic) return;
      }
    }
    if (!dynamic) return;
    const firstPath = this.foldString(first);
    if ((!firstPath || !firstPath.exact) && !this.grammar.numbers.has(this.unwrap(first).type)) {
      this.add('file_access_dynamic', first, `${q}() ${verb} a file whose path is computed at run time`);
    }
  }

  protected hugeMessage(what: string, n: number, unit: string): string {
    return `${what} produces ${formatCount(n)} ${unit}, above the limit of ${formatCount(this.input.policy.maxLiteralRange)}`;
  }

  // ---- the environment -------------------------------------------------------------------

  /**
   * Whether the environment mapping named at `node` is handed on whole (an argument, spread,
   * iterated, copied, its items listed) rather than read one key at a time (`env["HOME"]`, `.get`, `in`).
   */
  protected readsWholeEnvironment(node: Node): boolean {
    const g = this.grammar;
    const env = g.environment;
    let expression = node;
    let parent = node.parent;
    if (parent?.type === g.member.type && this.fieldIs(parent, g.member.property, node)) {
      expression = parent;
      parent = parent.parent;
    }
    while (parent && (parent.type === 'parenthesized_expression' || parent.type === 'as_expression')) {
      expression = parent;
      parent = parent.parent;
    }
    if (!parent) return false;
    const type = parent.type;
    if (type === g.member.type) {
      const property = parent.childForFieldName(g.member.property);
      return !!property && env.dumpers.has(this.nameOf(property));
    }
    if (env.loops.has(type)) return this.fieldIs(parent, 'right', expression);
    if (type === env.restDeclarator?.type) {
      // const { ...all } = process.env copies every variable; const { HOME } = process.env reads one.
      const { pattern, rest } = env.restDeclarator;
      const name = parent.childForFieldName('name');
      return name?.type === pattern && name.namedChildren.some((c) => c.type === rest);
    }
    if (type === g.binary) return env.concatenates && parent.childForFieldName('operator')?.type === '+';
    return env.dumpParents.has(type);
  }

  // ---- loops -----------------------------------------------------------------------------

  /** Reports `node` as a loop that never ends unless its body has a way out. */
  protected endlessUnlessExit(node: Node, message: string): void {
    const body = node.childForFieldName('body');
    if (!body || this.hasExit(body, 0, 0, new Set())) return;
    this.add('infinite_loop', node, message);
  }

  /** Whether control can leave the loop whose body this is. Nested functions do not count. */
  private hasExit(
    node: Node,
    loopDepth: number,
    switchDepth: number,
    innerLabels: ReadonlySet<string>,
    nesting = 0,
  ): boolean {
    // Pathologically deep bodies are given the benefit of the doubt rather than a stack overflow.
    if (nesting > MAX_BODY_NESTING) return true;
    const loops = this.grammar.loops;
    const type = node.type;
    if (type === loops.breakType) {
      const label = node.childForFieldName('label');
      if (label) return !innerLabels.has(textOf(this.input.src, label));
      return loopDepth === 0 && switchDepth === 0;
    }
    if (loops.exits.has(type)) return true;
    if (loops.scopes.has(type)) return false;
    if (type === this.grammar.call.type) {
      const fn = node.childForFieldName(this.grammar.call.callee);
      const chain = fn ? this.chainOf(fn, 0) : null;
      if (chain && loops.exitCalls.has(chain.join('.'))) return true;
    } else if (type === loops.labelType) {
      const label = node.childForFieldName('label');
      if (label) innerLabels = new Set([...innerLabels, textOf(this.input.src, label)]);
    }
    const isLoop = loops.types.has(type);
    const nextSwitch = type === loops.switchType ? switchDepth + 1 : switchDepth;
    const body = isLoop ? node.childForFieldName('body') : null;
    for (const child of node.namedChildren) {
      // A break in an inner loop's body ends that loop; one in its else clause ends ours.
      const depth = body && child.id === body.id ? loopDepth + 1 : loopDepth;
      if (this.hasExit(child, depth, nextSwitch, innerLabels, nesting + 1)) return true;
    }
    return false;
  }
}
