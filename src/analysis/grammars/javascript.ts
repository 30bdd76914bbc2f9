import type { Node } from 'web-tree-sitter';
import type { FieldRole, Grammar } from '../grammar.js';
import { Walker, type Args, type Ident, type IdentRef } from '../walker.js';
import {
  decodePayload,
  decodeJsEscapes,
  decodeJsIdentifier,
  formatCount,
  payloadMessage,
  snippet,
  table,
  textOf,
  UNKNOWN_PART,
  type AnalysisInput,
  type FoldedString,
  type ImportRule,
  type PayloadEncoding,
} from '../common.js';
import type { RuleId } from '../rules.js';

// JavaScript and TypeScript share this analyser: the TypeScript grammar extends the JavaScript one
// and keeps its node type names, adding wrappers (as/satisfies/non-null) that we look through.
const TYPES = [
  'import_statement',
  'export_statement',
  'variable_declarator',
  'assignment_expression',
  'augmented_assignment_expression',
  'identifier',
  'shorthand_property_identifier',
  'property_identifier',
  'call_expression',
  'new_expression',
  'subscript_expression',
  'while_statement',
  'do_statement',
  'for_statement',
  'with_statement',
  'import',
];

const MODULES = table<ImportRule>({
  import_process: ['child_process', 'cluster'],
  import_dynamic_code: ['vm', 'module', 'inspector', 'inspector/promises', 'repl'],
  // 'process' is left out: it is the global every file already has; its dangerous members are checked as uses.
  import_system: ['fs', 'fs/promises', 'os', 'worker_threads', 'v8', 'wasi'],
  import_network: ['net', 'http', 'https', 'http2', 'dgram', 'dns', 'dns/promises', 'tls'],
});

function normalizeModule(specifier: string): string {
  return specifier.startsWith('node:') ? specifier.slice(5) : specifier;
}

/** The Module class's loader internals (require('module').X or module.constructor.X). */
const MODULE_INTERNALS = [
  '_load',
  'createRequire',
  'Module',
  '_resolveFilename',
  '_extensions',
  '_cache',
  '_compile',
  'wrap',
  'wrapper',
  'runMain',
  '_findPath',
  '_initPaths',
];

const REFS = table<RuleId>({
  dynamic_code: [
    'eval',
    'Function',
    'vm.runInNewContext',
    'vm.runInThisContext',
    'vm.runInContext',
    'vm.compileFunction',
    'vm.createScript',
    'vm.Script',
    'vm.SourceTextModule',
  ],
  module_loader: [
    // `module` is both the CommonJS module object and require('module'); module.constructor is the
    // latter's Module class, reachable from any CommonJS file without a require.
    ...MODULE_INTERNALS.flatMap((f) => [`module.${f}`, `module.constructor.${f}`, `module.Module.${f}`]),
    'module.require',
    'require.main.require',
    'require.main.constructor',
    'require.cache',
    'require.extensions',
  ],
  process_spawn: ['exec', 'execSync', 'spawn', 'spawnSync', 'execFile', 'execFileSync', 'fork'].map(
    (f) => `child_process.${f}`,
  ),
  thread_spawn: ['worker_threads.Worker', 'cluster.fork', 'cluster.setupPrimary', 'cluster.setupMaster'],
  network_connect: [
    'net.connect',
    'net.createConnection',
    'net.Socket',
    'net.createServer',
    'http.request',
    'http.get',
    'http.createServer',
    'http.Agent',
    'https.request',
    'https.get',
    'https.createServer',
    'http2.connect',
    'http2.createServer',
    'tls.connect',
    'tls.createServer',
    'dgram.createSocket',
    'dns.lookup',
    'dns.resolve',
    'dns.Resolver',
    'dns.promises.lookup',
    'dns.promises.resolve',
  ],
  process_signal: ['process.kill'],
  process_exit: ['process.exit', 'process.abort', 'process.reallyExit'],
  environment_access: ['process.env'],
  process_internals: ['process.binding', 'process._linkedBinding', 'process.dlopen', 'process.mainModule'],
  network_access: ['fetch', 'WebSocket', 'XMLHttpRequest', 'EventSource'],
});

const BUILTIN_REFS = new Set([...REFS.keys()].filter((k) => !k.includes('.')));
// Single-segment names are included: `globalThis.eval` is eval.
const MEMBER_NAMES = new Set([...REFS.keys()].map((k) => k.split('.').pop() as string));
/** Names a user may legitimately declare for themselves (a helper called fetch). */
const NETWORK_NAMES = new Set(['fetch', 'WebSocket', 'XMLHttpRequest', 'EventSource']);
/** Never trusted to be shadowed: the check always includes the global meaning too. */
const CODE_GLOBALS = new Set(['eval', 'Function']);

// `self` and `window` are left out on purpose: Node has neither, and `const self = this` is common.
const GLOBAL_OBJECTS = new Set(['globalThis', 'global']);

const FS_FUNCS = new Set(
  [
    'readFile',
    'writeFile',
    'appendFile',
    'open',
    'readdir',
    'unlink',
    'rm',
    'rmdir',
    'mkdir',
    'stat',
    'lstat',
    'access',
    'exists',
    'copyFile',
    'cp',
    'rename',
    'symlink',
    'link',
    'readlink',
    'realpath',
    'chmod',
    'chown',
    'truncate',
    'utimes',
    'opendir',
  ].flatMap((f) => [f, `${f}Sync`]),
);
for (const f of ['createReadStream', 'createWriteStream', 'watch', 'watchFile']) FS_FUNCS.add(f);

// process.getBuiltinModule (Node 20.16+) loads a builtin module without require.
const REQUIRE_FUNCS = new Set([
  'require',
  'module.require',
  'require.main.require',
  'process.mainModule.require',
  'process.getBuiltinModule',
  'module._load',
  'module.constructor._load',
  'module.Module._load',
]);
const TIMERS = new Set(['setTimeout', 'setInterval']);
/** Calls that read a property named by their second argument (`Reflect.get(process, 'mainModule')`). */
const PROPERTY_GETTERS = new Set([
  'Reflect.get',
  'Reflect.getOwnPropertyDescriptor',
  'Object.getOwnPropertyDescriptor',
]);
const ALLOC_CALLS = new Set(['Array', 'Buffer.alloc', 'Buffer.allocUnsafe', 'Buffer.allocUnsafeSlow']);
const ALLOC_CONSTRUCTORS = new Set([
  'Array',
  'ArrayBuffer',
  'SharedArrayBuffer',
  'Buffer',
  'Int8Array',
  'Uint8Array',
  'Uint8ClampedArray',
  'Int16Array',
  'Uint16Array',
  'Int32Array',
  'Uint32Array',
  'Float32Array',
  'Float64Array',
  'BigInt64Array',
  'BigUint64Array',
]);
const STRING_GROWERS = new Set(['repeat', 'padStart', 'padEnd']);
/** Calls that run their (last) argument as code, checked for a decoded payload. */
const CODE_CALLS = new Set([
  'eval',
  'Function',
  'vm.runInNewContext',
  'vm.runInThisContext',
  'vm.runInContext',
]);
/** Buffer.from encodings that hide the text (utf8 and friends keep it as it is). */
const BUFFER_ENCODINGS = table<PayloadEncoding>({ base64: ['base64', 'base64url'], hex: ['hex'] });
const DECODER_NAMES = new Set(['atob', 'from', 'toString']);
const POLLUTION_CALLS = new Set([
  'Object.defineProperty',
  'Object.defineProperties',
  'Object.assign',
  'Object.setPrototypeOf',
  'Reflect.set',
  'Reflect.defineProperty',
  'Reflect.setPrototypeOf',
]);
const BUILTIN_CONSTRUCTORS = new Set([
  'Object',
  'Array',
  'Function',
  'String',
  'Number',
  'Boolean',
  'Symbol',
  'BigInt',
  'Promise',
  'RegExp',
  'Date',
  'Error',
  'Map',
  'Set',
  'WeakMap',
  'WeakSet',
  'Iterator',
]);
/** Objects whose properties must not be looked up by a computed name. */
const DYNAMIC_TARGETS = new Set(['', 'process', 'Function', 'Reflect', 'require']);
const POLLUTION_NAMES = new Set(['__proto__', 'prototype', 'constructor']);
/** Last segment of any callee the call handler cares about; other calls are skipped cheaply. */
const CALL_NAMES = new Set<string>([
  'require',
  'getBuiltinModule',
  ...TIMERS,
  'Array',
  'from',
  'alloc',
  'allocUnsafe',
  'allocUnsafeSlow',
  ...STRING_GROWERS,
  ...[...POLLUTION_CALLS, ...PROPERTY_GETTERS].map((k) => k.split('.').pop() as string),
  'constructor',
  ...FS_FUNCS,
  ...[...CODE_CALLS].map((k) => k.split('.').pop() as string),
  // Not checked as calls, but `const d = atob` must be kept as an alias for the payload check.
  'atob',
]);
const NEW_NAMES = new Set([...ALLOC_CONSTRUCTORS, 'constructor', 'Function']);

const STRINGISH = new Set(['string', 'template_string', 'binary_expression']);
function normalize(chain: string[]): string {
  if (chain[0] === 'fs' && chain[1] === 'promises') return ['fs/promises', ...chain.slice(2)].join('.');
  return chain.join('.');
}

/** Whether a sorted list of offsets has one in [start, end). */
function anyWithin(sorted: number[], start: number, end: number): boolean {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((sorted[mid] as number) < start) lo = mid + 1;
    else hi = mid;
  }
  return lo < sorted.length && (sorted[lo] as number) < end;
}

/** Functions and classes: a loop's exits do not reach into them. */
const FUNCTION_TYPES = new Set([
  'function_declaration',
  'function_expression',
  'function',
  'generator_function_declaration',
  'generator_function',
  'arrow_function',
  'method_definition',
  'class_declaration',
  'class',
  'abstract_class_declaration',
]);

type CallKind = 'require' | 'timer' | 'alloc' | 'arrayFrom' | 'pollution' | 'getter' | 'code' | 'paths';

/** What each call the checks care about is checked for. */
const CALL_KINDS = table<CallKind>({
  require: [...REQUIRE_FUNCS],
  timer: [...TIMERS],
  alloc: [...ALLOC_CALLS],
  arrayFrom: ['Array.from'],
  pollution: [...POLLUTION_CALLS],
  getter: [...PROPERTY_GETTERS],
  code: [...CODE_CALLS],
  paths: [...FS_FUNCS].flatMap((f) => [`fs.${f}`, `fs/promises.${f}`]),
});

const NAME_DECLARES: FieldRole = { field: 'name', match: 'declaration', other: 'reference' };
const LEFT_BINDS: FieldRole = { field: 'left', match: 'binding', other: 'reference' };
const PARAMETER_DECLARES: FieldRole = { field: 'parameter', match: 'declaration', other: 'reference' };

/** JavaScript, and TypeScript, whose grammar extends it and keeps its node type names. */
export const JAVASCRIPT: Grammar = {
  walkTypes: TYPES,
  identifierTypes: new Set(['identifier', 'shorthand_property_identifier', 'property_identifier']),
  identifier: 'identifier',
  member: {
    type: 'member_expression',
    object: 'object',
    property: 'property',
    propertyType: 'property_identifier',
  },
  subscript: { type: 'subscript_expression', object: 'object', index: 'index' },
  call: {
    type: 'call_expression',
    callee: 'function',
    arguments: 'arguments',
    argumentList: 'arguments',
    splats: new Set(['spread_element']),
    stopAtSplat: true,
  },
  binary: 'binary_expression',
  unary: 'unary_expression',
  not: { type: 'unary_expression', operator: '!' },
  await: 'await_expression',
  numbers: new Set(['number']),
  strings: new Set(['string', 'template_string']),
  trues: new Set(['true']),
  falses: new Set(['false', 'null', 'undefined']),
  booleansAreNumbers: false,
  // Shifts are 32-bit in JavaScript; the generic arithmetic would overstate them.
  unfoldedOperators: new Set(['<<', '>>']),
  bitNot: (v) => ~v,
  // TypeScript's as/satisfies/non-null wrappers are looked through like parentheses.
  unwrapFirst: new Set([
    'parenthesized_expression',
    'as_expression',
    'satisfies_expression',
    'non_null_expression',
  ]),
  unwrapLast: new Set(['sequence_expression', 'type_assertion']),
  // `self` and `window` are left out on purpose: Node has neither, and `const self = this` is common.
  globalObjects: new Set(['globalThis', 'global']),
  loops: {
    types: new Set(['while_statement', 'do_statement', 'for_statement', 'for_in_statement']),
    exits: new Set(['return_statement', 'throw_statement', 'yield_expression']),
    scopes: FUNCTION_TYPES,
    breakType: 'break_statement',
    switchType: 'switch_statement',
    labelType: 'labeled_statement',
    exitCalls: new Set(['process.exit', 'process.abort', 'process.reallyExit']),
  },
  environment: {
    names: new Set(['process.env']),
    // An argument, a spread, a value returned or formatted: handed on whole.
    dumpParents: new Set([
      'arguments',
      'spread_element',
      'return_statement',
      'template_substitution',
      'array',
      'pair',
    ]),
    loops: new Set(['for_in_statement']),
    dumpers: new Set(),
    concatenates: true,
    restDeclarator: { type: 'variable_declarator', pattern: 'object_pattern', rest: 'rest_pattern' },
  },
  fieldRoles: new Map<string, FieldRole>([
    ['member_expression', { field: 'property', match: 'member', other: 'reference' }],
    ['variable_declarator', { field: 'name', match: 'binding', other: 'reference' }],
    ['assignment_expression', LEFT_BINDS],
    ['assignment_pattern', LEFT_BINDS],
    ['object_assignment_pattern', LEFT_BINDS],
    ...[...FUNCTION_TYPES]
      .filter((t) => t !== 'arrow_function' && t !== 'method_definition')
      .map((t): [string, FieldRole] => [t, NAME_DECLARES]),
    ['required_parameter', { field: 'pattern', match: 'declaration', other: 'reference' }],
    ['optional_parameter', { field: 'pattern', match: 'declaration', other: 'reference' }],
    ['arrow_function', PARAMETER_DECLARES],
    ['catch_clause', PARAMETER_DECLARES],
    ['pair_pattern', { field: 'value', match: 'binding', other: 'other' }],
    [
      'binary_expression',
      { field: 'right', match: 'instanceof', other: 'reference', operator: 'instanceof' },
    ],
  ]),
  fixedRoles: new Map(
    [
      'formal_parameters',
      'rest_pattern',
      'array_pattern',
      'import_specifier',
      'import_clause',
      'namespace_import',
      'import_require_clause',
    ].map((t): [string, 'declaration'] => [t, 'declaration']),
  ),
  propertyIdentifier: 'property_identifier',
  modules: MODULES,
  moduleSeparator: '/',
  refs: REFS,
  shadowable: BUILTIN_REFS,
  callKinds: CALL_KINDS,
  callNames: CALL_NAMES,
  aliasCarriers: new Set([
    ...BUILTIN_REFS,
    ...MEMBER_NAMES,
    ...CALL_NAMES,
    ...GLOBAL_OBJECTS,
    ...BUILTIN_CONSTRUCTORS,
    'process',
    'module',
    'Reflect',
    'constructor',
    '__proto__',
    'prototype',
  ]),
  normalize,
};

class JavaScriptAnalyzer extends Walker {
  /** Start offsets of `import(...)` calls, so that `const m = await import('fs')` counts as an alias. */
  private readonly dynamicImports: number[] = [];
  private readonly declared = new Set<string>();
  private readonly subscriptStarts: number[] = [];

  constructor(input: AnalysisInput) {
    super(input, JAVASCRIPT);
  }

  protected readonly collectors = new Map<string, (node: Node) => void>([
    ['import_statement', (node) => this.importStatement(node)],
    ['export_statement', (node) => this.exportStatement(node)],
    ['variable_declarator', (node) => this.variableDeclarator(node)],
    ['assignment_expression', (node) => this.assignment(node)],
    ['augmented_assignment_expression', (node) => this.augmentedAssignment(node)],
    // The callee of `import(...)` (also the keyword of import statements, which is harmless here).
    ['import', (node) => this.dynamicImports.push(node.startIndex)],
    ['subscript_expression', (node) => this.subscriptStarts.push(node.startIndex)],
  ]);

  protected readonly checkers = new Map<string, (node: Node) => void>([
    ['call_expression', (node) => this.jsCall(node)],
    ['new_expression', (node) => this.newExpression(node)],
    ['subscript_expression', (node) => this.subscript(node)],
    ['assignment_expression', (node) => this.pollutingAssignment(node)],
    ['augmented_assignment_expression', (node) => this.pollutingAssignment(node)],
    ['while_statement', (node) => this.loop(node, node.childForFieldName('condition'))],
    ['do_statement', (node) => this.loop(node, node.childForFieldName('condition'))],
    ['for_statement', (node) => this.forLoop(node)],
    ['with_statement', (node) => this.withStatement(node)],
  ]);

  private augmentedAssignment(node: Node): void {
    const left = node.childForFieldName('left');
    if (left?.type === 'identifier') this.constants.assign(this.nameOf(left), null);
  }

  private forLoop(node: Node): void {
    const condition = node.childForFieldName('condition');
    // `for (;;)` has an empty condition, which is always true.
    this.loop(node, condition, !condition || condition.type === 'empty_statement');
  }

  private withStatement(node: Node): void {
    this.add(
      'with_statement',
      node,
      'Uses a "with" statement, which makes it unclear which variables the code refers to',
    );
  }

  protected override carriesAlias(start: number, end: number): boolean {
    return anyWithin(this.dynamicImports, start, end);
  }

  protected override countsAsUse(rule: RuleId, q: string): boolean {
    return rule !== 'network_access' || !this.declared.has(q);
  }

  private positional(call: Node): Node[] {
    return this.args(call).positional;
  }

  // ---- identifiers -----------------------------------------------------------------------

  protected wantsIdentifier({ name, type }: Ident): boolean {
    if (type === 'property_identifier') return MEMBER_NAMES.has(name) || name === 'constructor';
    return BUILTIN_REFS.has(name) || name === 'require' || this.bindings.isAlias(name);
  }

  protected override noteBinding({ name, role }: IdentRef): void {
    if ((role === 'binding' || role === 'declaration') && NETWORK_NAMES.has(name)) this.declared.add(name);
  }

  protected checkIdentifier({ node, name, parent, role }: IdentRef): void {
    if (role === 'member') {
      if (name === 'constructor') {
        const object = parent.childForFieldName('object');
        if (object && this.isConstructorAccess(object)) this.constructorEscape(node);
      }
      if (MEMBER_NAMES.has(name)) this.checkChain(parent, node);
    } else if (role === 'reference') {
      if (name === 'require' && !this.isPlainRequire(node, parent)) {
        this.add(
          'dynamic_import',
          node,
          'Uses require as a value (aliased, passed or called indirectly), which hides what it loads',
        );
      }
      // Function.prototype.call/bind/toString are everyday tools; calling the constructor through
      // it (Function.prototype.constructor("code")) is caught as a .constructor call.
      if (name === 'Function' && this.isPrototypeAccess(node, parent)) return;
      const qs = this.resolver.resolve([name]);
      if (CODE_GLOBALS.has(name) && !qs.includes(name)) qs.push(name);
      for (const q of qs) this.checkRef(q, node);
    }
  }

  protected decodeName(text: string): string {
    return decodeJsIdentifier(text);
  }

  private checkModule(specifier: string, node: Node): string {
    const module = normalizeModule(specifier);
    this.checkImport(module, node);
    return module;
  }

  // ---- bindings --------------------------------------------------------------------------

  private isTypeOnly(node: Node): boolean {
    // `import type …` / `export type … from` are erased by the compiler and load nothing.
    for (const child of node.children) {
      if (child.type === 'type') return true;
      if (child.isNamed) break;
    }
    return false;
  }

  private moduleOf(source: Node | null): { module: string; node: Node } | null {
    if (!source) return null;
    const spec = this.foldString(source);
    return spec?.exact ? { module: normalizeModule(spec.value), node: source } : null;
  }

  private importStatement(node: Node): void {
    if (this.isTypeOnly(node)) return;
    let source = this.moduleOf(node.childForFieldName('source'));
    for (const child of node.namedChildren) {
      if (child.type === 'import_require_clause') {
        // TypeScript `import x = require('m')`.
        source = this.moduleOf(child.childForFieldName('source'));
        const name = child.firstNamedChild;
        if (source && name?.type === 'identifier')
          this.bindings.addImport(this.nameOf(name), [source.module], true);
      }
    }
    if (!source) return;
    this.checkModule(source.module, source.node);
    const clause = node.namedChildren.find((c) => c.type === 'import_clause');
    if (!clause) return;
    for (const part of clause.namedChildren) {
      if (part.type === 'identifier') {
        this.bindings.addImport(this.nameOf(part), [source.module], true);
      } else if (part.type === 'namespace_import') {
        const name = part.firstNamedChild;
        if (name) this.bindings.addImport(this.nameOf(name), [source.module], true);
      } else if (part.type === 'named_imports') {
        for (const spec of part.namedChildren) {
          if (spec.type !== 'import_specifier') continue;
          const nameNode = spec.childForFieldName('name');
          const aliasNode = spec.childForFieldName('alias') ?? nameNode;
          if (!nameNode || !aliasNode) continue;
          const imported =
            nameNode.type === 'string' ? this.foldString(nameNode)?.value : this.nameOf(nameNode);
          if (imported === undefined) continue;
          const chain = [source.module, imported];
          this.checkRef(normalize(chain), nameNode);
          this.bindings.addImport(this.nameOf(aliasNode), chain, true);
        }
      }
    }
  }

  private exportStatement(node: Node): void {
    if (this.isTypeOnly(node)) return;
    const source = this.moduleOf(node.childForFieldName('source'));
    if (source) this.checkModule(source.module, source.node);
  }

  private variableDeclarator(node: Node): void {
    const name = node.childForFieldName('name');
    const value = node.childForFieldName('value');
    if (!name) return;
    if (name.type === 'identifier') {
      this.assign(this.nameOf(name), value);
      return;
    }
    if (name.type !== 'object_pattern' || !value) return;
    // const { exec: run } = require('child_process')  →  run is child_process.exec
    for (const part of name.namedChildren) {
      if (part.type === 'shorthand_property_identifier_pattern') {
        const n = this.nameOf(part);
        this.mayAlias(n, value, [n]);
      } else if (part.type === 'object_assignment_pattern') {
        const left = part.childForFieldName('left');
        if (left?.type === 'shorthand_property_identifier_pattern') {
          const n = this.nameOf(left);
          this.mayAlias(n, value, [n]);
        }
      } else if (part.type === 'pair_pattern') {
        const key = part.childForFieldName('key');
        let target = part.childForFieldName('value');
        if (target?.type === 'assignment_pattern') target = target.childForFieldName('left');
        if (!key || target?.type !== 'identifier') continue;
        const keyName = key.type === 'property_identifier' ? this.nameOf(key) : this.foldString(key)?.value;
        if (keyName !== undefined) this.mayAlias(this.nameOf(target), value, [keyName]);
      }
    }
  }

  // ---- identifiers -----------------------------------------------------------------------

  /** require(...), require.resolve(...), require.main and typeof require: the ordinary uses. */
  private isPlainRequire(node: Node, parent: Node): boolean {
    switch (parent.type) {
      case 'call_expression':
        return this.fieldIs(parent, 'function', node);
      case 'member_expression': {
        const property = parent.childForFieldName('property');
        const name = property ? this.nameOf(property) : '';
        return this.fieldIs(parent, 'object', node) && (name === 'resolve' || name === 'main');
      }
      case 'unary_expression':
        return parent.childForFieldName('operator')?.type === 'typeof';
      default:
        return false;
    }
  }

  private isPrototypeAccess(node: Node, parent: Node): boolean {
    if (parent.type !== 'member_expression' || !this.fieldIs(parent, 'object', node)) return false;
    const property = parent.childForFieldName('property');
    return !!property && this.nameOf(property) === 'prototype';
  }

  private constructorEscape(node: Node): void {
    this.add(
      'constructor_escape',
      node,
      'Uses .constructor.constructor, which reaches the Function constructor and runs text as code',
    );
  }

  private isConstructorAccess(node: Node): boolean {
    const target = this.unwrap(node);
    if (target.type === 'member_expression') {
      const property = target.childForFieldName('property');
      return !!property && this.nameOf(property) === 'constructor';
    }
    if (target.type === 'subscript_expression') {
      const index = target.childForFieldName('index');
      const key = index ? this.foldString(index) : null;
      return key?.exact === true && key.value === 'constructor';
    }
    return false;
  }

  // ---- expressions -----------------------------------------------------------------------

  protected callChain(call: Node, depth: number): string[] | null {
    const module = this.requiredModule(call, depth);
    return module === null ? null : [module];
  }

  /** The module a `require('m')` / `import('m')` call loads, when it is a literal. */
  private requiredModule(call: Node, depth: number): string | null {
    const fn = call.childForFieldName('function');
    if (!fn) return null;
    if (fn.type !== 'import') {
      const chain = this.chainOf(fn, depth + 1);
      if (!chain) return null;
      const last = chain[chain.length - 1] as string;
      if (
        last !== 'require' &&
        last !== 'getBuiltinModule' &&
        last !== '_load' &&
        !(chain.length === 1 && this.bindings.isAlias(last))
      )
        return null;
      if (!this.resolver.resolve(chain, depth + 1).some((q) => REQUIRE_FUNCS.has(q))) {
        return null;
      }
    }
    const arg = this.positional(call)[0];
    const spec = arg ? this.foldString(arg) : null;
    return spec?.exact ? normalizeModule(spec.value) : null;
  }

  protected foldLiteral(node: Node): FoldedString | null {
    if (node.type === 'string') {
      const text = textOf(this.input.src, node);
      return { value: decodeJsEscapes(text.slice(1, -1)), exact: true };
    }
    if (node.type !== 'template_string') return null;
    let value = '';
    let exact = true;
    for (const part of node.namedChildren) {
      const type = part.type;
      if (type === 'string_fragment') value += textOf(this.input.src, part);
      else if (type === 'escape_sequence') value += decodeJsEscapes(textOf(this.input.src, part));
      else if (type === 'template_substitution') {
        value += UNKNOWN_PART;
        exact = false;
      }
    }
    return { value, exact };
  }

  /** The text a decoding call yields: `atob('…')`, `Buffer.from('…', 'base64').toString()`. */
  protected foldCall(call: Node, depth: number): FoldedString | null {
    const fn = call.childForFieldName('function');
    if (!fn) return null;
    const last = this.calleeName(fn);
    if (last === null || (!DECODER_NAMES.has(last) && !this.bindings.isAlias(last))) return null;
    const args = this.positional(call);
    const callee = this.unwrap(fn);
    if (last === 'toString' && callee.type === 'member_expression') {
      const object = callee.childForFieldName('object');
      return object ? this.foldString(object, depth + 1) : null;
    }
    const chain = this.chainOf(fn, depth + 1);
    const first = args[0];
    if (!chain || !first) return null;
    for (const q of this.resolver.resolve(chain, depth + 1)) {
      if (q !== 'atob' && q !== 'Buffer.from') continue;
      const payload = this.foldString(first, depth + 1);
      if (!payload) return null;
      if (q === 'atob') return decodePayload(payload, 'base64');
      const encoding = args[1] ? this.foldString(args[1], depth + 1) : null;
      if (!encoding) return payload;
      const decoder = encoding.exact ? BUFFER_ENCODINGS.get(encoding.value.toLowerCase()) : undefined;
      return decoder ? decodePayload(payload, decoder) : encoding.exact ? payload : null;
    }
    return null;
  }

  protected override foldNumberCall(call: Node, depth: number): number | null {
    const fn = call.childForFieldName('function');
    const chain = fn ? this.chainOf(fn, depth + 1) : null;
    if (chain?.join('.') !== 'Math.pow') return null;
    const [a, b] = this.positional(call);
    const x = a ? this.foldNumber(a, depth + 1) : null;
    const y = b ? this.foldNumber(b, depth + 1) : null;
    return x === null || y === null ? null : x ** y;
  }

  // ---- calls -----------------------------------------------------------------------------

  private jsCall(node: Node): void {
    const fn = node.childForFieldName('function');
    if (!fn) return;
    if (fn.type === 'import') {
      this.checkLoad(node, 'import()');
      return;
    }
    const last = this.calleeName(fn);
    if (last === null || (!CALL_NAMES.has(last) && !this.bindings.isAlias(last))) return;
    const args = this.args(node);
    const positional = args.positional;
    if (last === 'constructor' && this.isConstructorAccess(fn)) {
      if (positional.some((a) => STRINGISH.has(this.unwrap(a).type))) this.constructorCall(node);
      return;
    }
    if (STRING_GROWERS.has(last) && this.unwrap(fn).type === 'member_expression') {
      this.checkSize(node, positional[0], `.${last}()`, 'characters');
    }
    this.call(node, fn, args);
  }

  protected checkCall(kind: string, q: string, node: Node, { positional: args }: Args): void {
    switch (kind as CallKind) {
      case 'require':
        this.checkLoad(node, 'require()');
        break;
      case 'timer': {
        const code = args[0];
        if (code && STRINGISH.has(this.unwrap(code).type)) {
          this.add('timer_string_code', code, `Passes a string to ${q}(), which runs it as code`);
        }
        break;
      }
      case 'alloc':
        this.checkSize(node, args[0], `${q}()`, q === 'Array' ? 'elements' : 'bytes');
        break;
      case 'arrayFrom':
        this.checkArrayFrom(node, args[0]);
        break;
      case 'pollution': {
        const target = args[0];
        if (target && this.pollutionTarget(target)) {
          this.add(
            'prototype_pollution',
            target,
            `${q}() changes ${snippet(textOf(this.input.src, target))}, a prototype shared by other objects`,
          );
        }
        break;
      }
      case 'getter':
        this.checkReflectGet(node, args);
        break;
      case 'code':
        this.checkPayload(q, q === 'Function' ? args[args.length - 1] : args[0]);
        break;
      case 'paths':
        this.checkPaths(q, args, 'uses');
        break;
    }
  }

  private checkPayload(q: string, code: Node | undefined): void {
    const payload = code ? this.foldString(code) : null;
    if (code && payload?.decodedFrom) this.add('encoded_payload', code, payloadMessage(`${q}()`, payload));
  }

  private constructorCall(node: Node): void {
    this.add(
      'dynamic_code',
      node,
      'Calls a .constructor with a string, which builds a function from text (like the Function constructor)',
    );
  }

  private checkLoad(node: Node, what: string): void {
    const arg = this.positional(node)[0];
    if (!arg) return;
    const spec = this.foldString(arg);
    if (spec?.exact) {
      if (this.readsStdinOnly(node, spec.value)) return;
      this.checkModule(spec.value, arg);
    } else {
      this.add(
        'dynamic_import',
        node,
        `${what} is called with a module name computed at run time, which hides what it loads`,
      );
    }
  }

  /**
   * `require('fs').readFileSync(0 | '/dev/stdin', …)`: the usual way a JavaScript program reads its
   * input. The module object goes nowhere else, so it is no system-module import (not even under strict).
   */
  private readsStdinOnly(call: Node, module: string): boolean {
    if (normalizeModule(module) !== 'fs') return false;
    const member = call.parent;
    if (member?.type !== 'member_expression' || !this.fieldIs(member, 'object', call)) return false;
    const property = member.childForFieldName('property');
    if (!property || this.nameOf(property) !== 'readFileSync') return false;
    const read = member.parent;
    if (read?.type !== 'call_expression' || !this.fieldIs(read, 'function', member)) return false;
    const source = this.positional(read)[0];
    if (!source) return false;
    if (source.type === 'number') return textOf(this.input.src, source) === '0';
    const path = this.foldString(source);
    return path?.exact === true && path.value === '/dev/stdin';
  }

  private checkSize(node: Node, arg: Node | undefined, what: string, unit: string): void {
    const n = arg ? this.foldNumber(arg) : null;
    const max = this.input.policy.maxLiteralRange;
    if (n !== null && n > max) {
      this.add(
        'huge_allocation',
        node,
        `${what} asks for ${formatCount(n)} ${unit}, above the limit of ${formatCount(max)}`,
      );
    }
  }

  private checkArrayFrom(node: Node, arg: Node | undefined): void {
    if (!arg || arg.type !== 'object') return;
    for (const pair of arg.namedChildren) {
      if (pair.type !== 'pair') continue;
      const key = pair.childForFieldName('key');
      const name =
        key?.type === 'property_identifier' ? this.nameOf(key) : key ? this.foldString(key)?.value : null;
      if (name === 'length') {
        this.checkSize(node, pair.childForFieldName('value') ?? undefined, 'Array.from()', 'elements');
      }
    }
  }

  private checkReflectGet(node: Node, args: Node[]): void {
    const [target, key] = args;
    if (!target || !key) return;
    const base = this.chainOf(target, 0);
    if (!base) return;
    const name = this.foldString(key);
    if (name?.exact) {
      for (const q of this.resolver.resolve([...base, name.value])) this.checkRef(q, node);
    } else if (this.resolver.resolve(base).some((q) => this.isDynamicTarget(q))) {
      this.add('global_dynamic_access', node, this.dynamicAccessMessage(target));
    }
  }

  private newExpression(node: Node): void {
    const ctor = node.childForFieldName('constructor');
    if (!ctor) return;
    const last = this.calleeName(ctor);
    if (last === null || (!NEW_NAMES.has(last) && !this.bindings.isAlias(last))) return;
    const args = this.positional(node);
    if (last === 'constructor' && this.isConstructorAccess(ctor)) {
      if (args.some((a) => STRINGISH.has(this.unwrap(a).type))) this.constructorCall(node);
      return;
    }
    const chain = this.chainOf(ctor, 0);
    if (!chain) return;
    for (const q of this.resolver.resolve(chain)) {
      if (q === 'Function') this.checkPayload(q, args[args.length - 1]);
      if (ALLOC_CONSTRUCTORS.has(q)) {
        this.checkSize(node, args[0], `new ${q}()`, q === 'Array' ? 'elements' : 'bytes or elements');
        return;
      }
    }
  }

  private isDynamicTarget(q: string): boolean {
    return DYNAMIC_TARGETS.has(q) || this.moduleRule(q) !== undefined;
  }

  private dynamicAccessMessage(object: Node): string {
    return `Looks up a property of ${snippet(textOf(this.input.src, object))} whose name is computed at run time, which can hide what it reaches`;
  }

  private subscript(node: Node): void {
    const object = node.childForFieldName('object');
    const index = node.childForFieldName('index');
    if (!object || !index) return;
    const indexType = this.unwrap(index).type;
    if (indexType === 'number') return;
    const key = this.foldString(index);
    if (key?.exact) {
      if (key.value === 'constructor' && this.isConstructorAccess(object)) this.constructorEscape(index);
      if (MEMBER_NAMES.has(key.value)) this.checkChain(node, index);
      // A key assembled from pieces ('ev' + 'al') is obfuscation even when we can fold it.
      if (indexType === 'string' || indexType === 'template_string') return;
    }
    const base = this.chainOf(object, 0);
    if (base && this.resolver.resolve(base).some((q) => this.isDynamicTarget(q))) {
      this.add('global_dynamic_access', node, this.dynamicAccessMessage(object));
    }
  }

  // ---- prototype pollution ---------------------------------------------------------------

  /** Whether writing to (or through) this expression changes a shared prototype. */
  private pollutionTarget(node: Node): boolean {
    const segments: string[] = [];
    let cur = this.unwrap(node);
    for (let i = 0; i < 32; i++) {
      if (cur.type === 'member_expression') {
        const property = cur.childForFieldName('property');
        segments.unshift(property ? this.nameOf(property) : '*');
      } else if (cur.type === 'subscript_expression') {
        const index = cur.childForFieldName('index');
        const key = index ? this.foldString(index) : null;
        segments.unshift(key?.exact ? key.value : '*');
      } else {
        break;
      }
      const object = cur.childForFieldName('object');
      if (!object) break;
      cur = this.unwrap(object);
    }
    const rootChain = this.chainOf(cur, 0);
    const roots = rootChain ? this.resolver.resolve(rootChain) : ['*'];
    for (const root of roots) {
      const full = [...(root === '' ? [] : root.split('.')), ...segments];
      if (full.includes('__proto__')) return true;
      if (BUILTIN_CONSTRUCTORS.has(full[0] as string) && full[1] === 'prototype') return true;
      for (let i = 0; i + 1 < full.length; i++) {
        if (full[i] === 'constructor' && full[i + 1] === 'prototype') return true;
      }
    }
    return false;
  }

  private pollutingAssignment(node: Node): void {
    const left = node.childForFieldName('left');
    if (!left) return;
    const type = this.unwrap(left).type;
    if (type !== 'member_expression' && type !== 'subscript_expression') return;
    // Cheap pre-check on names already read: `this.count = 0` needs no walk down the chain.
    const start = left.startIndex;
    const end = left.endIndex;
    const suspicious =
      type === 'subscript_expression' ||
      anyWithin(this.subscriptStarts, start, end) ||
      this.someIdWithin(
        start,
        end,
        (id) =>
          POLLUTION_NAMES.has(id.name) ||
          (id.type !== 'property_identifier' && this.bindings.isAlias(id.name)),
      );
    if (suspicious && this.pollutionTarget(left)) {
      this.add(
        'prototype_pollution',
        left,
        `Assigns to ${snippet(textOf(this.input.src, left))}, which changes a prototype shared by other objects`,
      );
    }
  }

  // ---- loops -----------------------------------------------------------------------------

  private loop(node: Node, condition: Node | null, alwaysTrue = false): void {
    if (!alwaysTrue && (!condition || this.truthy(condition) !== true)) return;
    this.endlessUnlessExit(
      node,
      'This loop never ends: its condition is always true and its body has no break, return, throw or exit',
    );
  }
}

export function analyzeJavaScript(root: Node, input: AnalysisInput): void {
  new JavaScriptAnalyzer(input).run(root);
}
