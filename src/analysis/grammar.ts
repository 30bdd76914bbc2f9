import type { ImportRule } from './common.js';
import type { RuleId } from './rules.js';

/** How an identifier's parent decides its role when the identifier sits in field `field`. */
export interface FieldRole {
  field: string;
  /** Role when the identifier is that field (and, if given, the parent's operator is `operator`). */
  match: Role;
  other: Role;
  operator?: string;
}

/**
 * What an identifier is where it stands: read (`reference`), the name after a dot (`member`),
 * assigned (`binding`), declared (`declaration`), `instanceof`'s right side, or a mere key (`other`).
 */
export type Role = 'member' | 'reference' | 'binding' | 'declaration' | 'instanceof' | 'other';

/**
 * Everything the walker needs to know about one grammar: the node types and field names of the
 * shapes it understands, and the language's tables of dangerous modules and names. A new language
 * is one of these plus the checks that only it has.
 */
export interface Grammar {
  /** Node types the single tree walk hands over (identifiers first among equals). */
  walkTypes: string[];
  /** Node types recorded as identifiers (names decoded once, in document order). */
  identifierTypes: ReadonlySet<string>;
  identifier: string;
  /** `a.b`: node type and fields. */
  member: { type: string; object: string; property: string; propertyType: string };
  /** `a[b]`. */
  subscript: { type: string; object: string; index: string };
  /** `f(x)`: node type, fields, the argument list's type, keyword arguments and splats. */
  call: {
    type: string;
    callee: string;
    arguments: string;
    argumentList: string;
    keyword?: string;
    splats: ReadonlySet<string>;
    /** Whether positions after a splat are unknown (JavaScript) or the splat is merely skipped. */
    stopAtSplat: boolean;
  };
  binary: string;
  unary: string;
  /** Logical not: its node type, and its operator when it shares the unary type. */
  not: { type: string; operator?: string };
  /** `await x` is x, for naming what it denotes. */
  await?: string;
  numbers: ReadonlySet<string>;
  strings: ReadonlySet<string>;
  trues: ReadonlySet<string>;
  falses: ReadonlySet<string>;
  /** Whether true/false fold to 1/0 in arithmetic. */
  booleansAreNumbers: boolean;
  /** Operators that numeric folding must not model (JavaScript's 32-bit shifts). */
  unfoldedOperators: ReadonlySet<string>;
  /** `~v` in the language's integer model. */
  bitNot: (v: number) => number;
  /** Wrappers looked through to their first named child (parentheses, TypeScript's `as`), or their last. */
  unwrapFirst: ReadonlySet<string>;
  unwrapLast: ReadonlySet<string>;
  /** Names that stand for the global object itself (`globalThis.eval` is eval). */
  globalObjects: ReadonlySet<string>;

  /** For finding loops without an exit. */
  loops: {
    types: ReadonlySet<string>;
    /** Nodes that leave any loop (return, raise/throw, yield). */
    exits: ReadonlySet<string>;
    /** Nodes whose insides do not belong to the loop (nested functions and classes). */
    scopes: ReadonlySet<string>;
    breakType: string;
    switchType?: string;
    labelType?: string;
    exitCalls: ReadonlySet<string>;
  };

  /** Where a use of the environment mapping hands the whole of it on. */
  environment: {
    names: ReadonlySet<string>;
    dumpParents: ReadonlySet<string>;
    /** Loops whose `right` field is iterated. */
    loops: ReadonlySet<string>;
    /** Methods that hand out the whole mapping (`os.environ.items()`). */
    dumpers: ReadonlySet<string>;
    /** Whether `+` with it (string concatenation) prints it whole. */
    concatenates: boolean;
    /** `const { ...all } = process.env`: the declarator type and the rest pattern's type. */
    restDeclarator?: { type: string; pattern: string; rest: string };
  };

  /** Identifier roles by parent type: decided by a field, or fixed. */
  fieldRoles: ReadonlyMap<string, FieldRole>;
  fixedRoles: ReadonlyMap<string, Role>;
  /** The identifier type that is only ever a property key or member name (JavaScript). */
  propertyIdentifier?: string;

  /** Importing one of these modules (or a submodule: after this separator) is a finding of the given rule. */
  modules: ReadonlyMap<string, ImportRule>;
  moduleSeparator: string;
  /** Qualified names whose mere use is a finding. */
  refs: ReadonlyMap<string, RuleId>;
  /** Builtins that an import may shadow only if nothing else rebinds them. */
  shadowable: ReadonlySet<string>;
  /** Call shapes: the check (a name the language's checkCall knows) for each qualified callee. */
  callKinds: ReadonlyMap<string, string>;
  /** Last segments of callees the call checks care about; other calls are skipped cheaply. */
  callNames: ReadonlySet<string>;
  /** Names whose presence in an assigned value makes the assignment a possible alias. */
  aliasCarriers: ReadonlySet<string>;
  /** `a.b.c` as the qualified name the tables use. */
  normalize: (chain: string[]) => string;
}
