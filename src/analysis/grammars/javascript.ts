import type { Node } from 'web-tree-sitter';
import { Analyzer, MAX_BODY_NESTING, MAX_NESTING, type Ident } from './analyzer.js';
import {
  applyArithmetic,
  classifyPath,
  concatFolded,
  decodePayload,
  decodeJsEscapes,
  decodeJsIdentifier,
  formatCount,
  importMessage,
  parseNumberLiteral,
  payloadMessage,
  referenceMessage,
  showPath,
  snippet,
  table,
  textOf,
  UNKNOWN_PART,
  type AnalysisInput,
  type FoldedString,
  type ImportRule,
  type PayloadEncoding,
} from './common.js';
import type { RuleId } from './rules.js';

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

function moduleRule(module: string): ImportRule | undefined {
  return MODULES.get(module) ?? MODULES.get(module.split('/')[0] as string);
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

/** Places where an expression is handed on whole: an argument, a spread, a value returned or formatted. */
const ENVIRONMENT_DUMP_PARENTS = new Set([
  'arguments',
  'spread_element',
  'return_statement',
  'template_substitution',
  'array',
  'pair',
]);

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
const EXIT_CALLS = new Set(['process.exit', 'process.abort', 'process.reallyExit']);

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
const LOOP_TYPES = new Set(['while_statement', 'do_statement', 'for_statement', 'for_in_statement']);
const WRAPPERS = new Set(['as_expression', 'satisfies_expression', 'non_null_expression']);

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

type Role = 'member' | 'reference' | 'binding' | 'declaration' | 'instanceof' | 'other';

interface JsIdent extends Ident {
  type: string;
}

class JavaScriptAnalyzer extends Analyzer<JsIdent> {
  /** Start offsets of `import(...)` calls, so that `const m = await import('fs')` counts as an alias. */
  private readonly dynamicImports: number[] = [];
  private readonly declared = new Set<string>();
  private readonly subscriptStarts: number[] = [];

  constructor(input: AnalysisInput) {
    super(input, normalize, BUILTIN_REFS);
  }

  run(root: Node): void {
    const others: { node: Node; type: string }[] = [];
    for (const node of root.descendantsOfType(TYPES)) {
      const type = node.type;
      switch (type) {
        case 'identifier':
        case 'shorthand_property_identifier':
        case 'property_identifier': {
          this.ids.push({ node, name: this.readName(node), type });
          break;
        }
        case 'import_statement':
          this.importStatement(node);
          break;
        case 'export_statement':
          this.exportStatement(node);
          break;
        case 'variable_declarator':
          this.variableDeclarator(node);
          break;
        case 'assignment_expression':
          this.assignment(node);
          others.push({ node, type });
          break;
        case 'augmented_assignment_expression': {
          const left = node.childForFieldName('left');
          if (left?.type === 'identifier') this.constants.assign(this.nameOf(left), null);
          others.push({ node, type });
          break;
        }
        case 'import':
          // The callee of `import(...)` (also the keyword of import statements, which is harmless here).
          this.dynamicImports.push(node.startIndex);
          break;
        case 'subscript_expression':
          this.subscriptStarts.push(node.startIndex);
          others.push({ node, type });
          break;
        default:
          others.push({ node, type });
      }
    }
    this.findAliases();
    this.identifiers();
    for (const { node, type } of others) {
      switch (type) {
        case 'call_expression':
          this.call(node);
          break;
        case 'new_expression':
          this.newExpression(node);
          break;
        case 'subscript_expression':
          this.subscript(node);
          break;
        case 'assignment_expression':
        case 'augmented_assignment_expression':
          this.pollutingAssignment(node);
          break;
        case 'while_statement':
        case 'do_statement':
          this.loop(node, node.childForFieldName('condition'));
          break;
        case 'for_statement': {
          const condition = node.childForFieldName('condition');
          // `for (;;)` has an empty condition, which is always true.
          this.loop(node, condition, !condition || condition.type === 'empty_statement');
          break;
        }
        case 'with_statement':
          this.add(
            'with_statement',
            node,
            'Uses a "with" statement, which makes it unclear which variables the code refers to',
          );
          break;
      }
    }
  }

  protected decodeName(text: string): string {
    return decodeJsIdentifier(text);
  }

  protected checkRef(q: string, node: Node): void {
    const rule = REFS.get(q);
    if (!rule) return;
    if (rule === 'network_access' && this.declared.has(q)) return;
    this.add(rule, node, referenceMessage(rule, q));
    if (q === 'process.env' && this.readsWholeEnvironment(node)) {
      this.add('environment_dump', node, referenceMessage('environment_dump', q));
    }
  }

  /**
   * Whether process.env (named at `node`) is handed on whole (an argument, spread, iterated, returned)
   * rather than read one variable at a time (`process.env.HOME`, `process.env[k]`, `k in process.env`).
   */
  private readsWholeEnvironment(node: Node): boolean {
    let expression = node;
    let parent = node.parent;
    if (parent?.type === 'member_expression' && this.fieldIs(parent, 'property', node)) {
      expression = parent;
      parent = parent.parent;
    }
    while (parent?.type === 'parenthesized_expression' || parent?.type === 'as_expression') {
      expression = parent;
      parent = parent.parent;
    }
    if (!parent) return false;
    switch (parent.type) {
      case 'for_in_statement':
        return this.fieldIs(parent, 'right', expression);
      case 'variable_declarator': {
        // const { ...all } = process.env copies every variable; const { HOME } = process.env reads one.
        const name = parent.childForFieldName('name');
        return name?.type === 'object_pattern' && name.namedChildren.some((c) => c.type === 'rest_pattern');
      }
      case 'binary_expression':
        return parent.childForFieldName('operator')?.type === '+';
      default:
        return ENVIRONMENT_DUMP_PARENTS.has(parent.type);
    }
  }

  private checkModule(specifier: string, node: Node): string {
    const module = normalizeModule(specifier);
    const rule = moduleRule(module);
    if (rule) this.add(rule, node, importMessage(rule, module));
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

  /** Keeps only the assignments that can carry something dangerous (see Analyzer.acceptAliases). */
  private findAliases(): void {
    const interesting = (id: JsIdent): boolean => {
      const n = id.name;
      return (
        BUILTIN_REFS.has(n) ||
        MEMBER_NAMES.has(n) ||
        CALL_NAMES.has(n) ||
        GLOBAL_OBJECTS.has(n) ||
        BUILTIN_CONSTRUCTORS.has(n) ||
        n === 'process' ||
        n === 'module' ||
        n === 'Reflect' ||
        n === 'constructor' ||
        n === '__proto__' ||
        n === 'prototype' ||
        this.bindings.isAlias(n)
      );
    };
    this.acceptAliases(
      (start, end) =>
        anyWithin(this.dynamicImports, start, end) || this.someIdWithin(start, end, interesting),
    );
  }

  // ---- identifiers -----------------------------------------------------------------------

  private fieldIs(parent: Node, field: string, node: Node): boolean {
    return parent.childForFieldName(field)?.id === node.id;
  }

  private role(node: Node, parent: Node): Role {
    switch (parent.type) {
      case 'member_expression':
        return this.fieldIs(parent, 'property', node) ? 'member' : 'reference';
      case 'variable_declarator':
        return this.fieldIs(parent, 'name', node) ? 'binding' : 'reference';
      case 'assignment_expression':
      case 'assignment_pattern':
      case 'object_assignment_pattern':
        return this.fieldIs(parent, 'left', node) ? 'binding' : 'reference';
      case 'function_declaration':
      case 'function_expression':
      case 'function':
      case 'generator_function_declaration':
      case 'generator_function':
      case 'class_declaration':
      case 'class':
      case 'abstract_class_declaration':
        return this.fieldIs(parent, 'name', node) ? 'declaration' : 'reference';
      case 'required_parameter':
      case 'optional_parameter':
        return this.fieldIs(parent, 'pattern', node) ? 'declaration' : 'reference';
      case 'arrow_function':
        return this.fieldIs(parent, 'parameter', node) ? 'declaration' : 'reference';
      case 'catch_clause':
        return this.fieldIs(parent, 'parameter', node) ? 'declaration' : 'reference';
      case 'pair_pattern':
        return this.fieldIs(parent, 'value', node) ? 'binding' : 'other';
      case 'formal_parameters':
      case 'rest_pattern':
      case 'array_pattern':
      case 'import_specifier':
      case 'import_clause':
      case 'namespace_import':
      case 'import_require_clause':
        return 'declaration';
      case 'binary_expression':
        return parent.childForFieldName('operator')?.type === 'instanceof' &&
          this.fieldIs(parent, 'right', node)
          ? 'instanceof'
          : 'reference';
      case 'pair':
      case 'method_definition':
      case 'public_field_definition':
      case 'field_definition':
        return node.type === 'property_identifier' ? 'other' : 'reference';
      default:
        return node.type === 'property_identifier' ? 'other' : 'reference';
    }
  }

  private identifiers(): void {
    const refs: { node: Node; name: string; parent: Node; role: Role }[] = [];
    for (const { node, name, type } of this.ids) {
      if (type === 'property_identifier') {
        if (!MEMBER_NAMES.has(name) && name !== 'constructor') continue;
      } else if (!BUILTIN_REFS.has(name) && name !== 'require' && !this.bindings.isAlias(name)) {
        continue;
      }
      const parent = node.parent;
      if (!parent) continue;
      const role = this.role(node, parent);
      if ((role === 'binding' || role === 'declaration') && NETWORK_NAMES.has(name)) this.declared.add(name);
      refs.push({ node, name, parent, role });
    }
    for (const { node, name, parent, role } of refs) {
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
        if (name === 'Function' && this.isPrototypeAccess(node, parent)) continue;
        const qs = this.resolver.resolve([name]);
        if (CODE_GLOBALS.has(name) && !qs.includes(name)) qs.push(name);
        for (const q of qs) this.checkRef(q, node);
      }
    }
  }

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

  private unwrap(node: Node): Node {
    let cur = node;
    for (;;) {
      const type = cur.type;
      let next: Node | null = null;
      if (type === 'parenthesized_expression' || WRAPPERS.has(type)) next = cur.firstNamedChild;
      else if (type === 'sequence_expression' || type === 'type_assertion') next = cur.lastNamedChild;
      if (!next) return cur;
      cur = next;
    }
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

  protected chainOf(node: Node, depth: number): string[] | null {
    if (depth > MAX_NESTING) return null;
    const target = this.unwrap(node);
    switch (target.type) {
      case 'identifier': {
        const name = this.nameOf(target);
        return GLOBAL_OBJECTS.has(name) && !this.bindings.isAlias(name) ? [] : [name];
      }
      case 'member_expression': {
        const object = target.childForFieldName('object');
        const property = target.childForFieldName('property');
        if (!object || property?.type !== 'property_identifier') return null;
        const base = this.chainOf(object, depth + 1);
        return base ? [...base, this.nameOf(property)] : null;
      }
      case 'subscript_expression': {
        const object = target.childForFieldName('object');
        const index = target.childForFieldName('index');
        const key = index ? this.foldString(index) : null;
        if (!object || !key?.exact) return null;
        const base = this.chainOf(object, depth + 1);
        return base ? [...base, key.value] : null;
      }
      case 'await_expression': {
        const inner = target.firstNamedChild;
        return inner ? this.chainOf(inner, depth + 1) : null;
      }
      case 'call_expression': {
        const module = this.requiredModule(target, depth);
        return module === null ? null : [module];
      }
      default:
        return null;
    }
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
    const arg = this.args(call)[0];
    const spec = arg ? this.foldString(arg) : null;
    return spec?.exact ? normalizeModule(spec.value) : null;
  }

  private args(call: Node): Node[] {
    const list = call.childForFieldName('arguments');
    if (!list || list.type !== 'arguments') return [];
    const out: Node[] = [];
    for (const arg of list.namedChildren) {
      const type = arg.type;
      if (type === 'comment') continue;
      // Positions after a spread are unknown.
      if (type === 'spread_element') break;
      out.push(arg);
    }
    return out;
  }

  private foldString(node: Node, depth = 0): FoldedString | null {
    if (depth > MAX_NESTING) return null;
    const target = this.unwrap(node);
    switch (target.type) {
      case 'string': {
        const text = textOf(this.input.src, target);
        return { value: decodeJsEscapes(text.slice(1, -1)), exact: true };
      }
      case 'template_string': {
        let value = '';
        let exact = true;
        for (const part of target.namedChildren) {
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
      case 'binary_expression': {
        if (target.childForFieldName('operator')?.type !== '+') return null;
        const left = target.childForFieldName('left');
        const right = target.childForFieldName('right');
        return concatFolded(
          left ? this.foldString(left, depth + 1) : null,
          right ? this.foldString(right, depth + 1) : null,
        );
      }
      case 'identifier': {
        const value = this.constants.get(this.nameOf(target));
        return value ? this.foldString(value, depth + 1) : null;
      }
      case 'call_expression':
        return this.foldDecoding(target, depth);
      default:
        return null;
    }
  }

  /** The text a decoding call yields: `atob('…')`, `Buffer.from('…', 'base64').toString()`. */
  private foldDecoding(call: Node, depth: number): FoldedString | null {
    const fn = call.childForFieldName('function');
    if (!fn) return null;
    const last = this.calleeName(fn);
    if (last === null || (!DECODER_NAMES.has(last) && !this.bindings.isAlias(last))) return null;
    const args = this.args(call);
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

  private foldNumber(node: Node, depth = 0): number | null {
    if (depth > MAX_NESTING) return null;
    const target = this.unwrap(node);
    switch (target.type) {
      case 'number':
        return parseNumberLiteral(textOf(this.input.src, target));
      case 'unary_expression': {
        const op = target.childForFieldName('operator')?.type;
        const arg = target.childForFieldName('argument');
        const v = arg ? this.foldNumber(arg, depth + 1) : null;
        if (v === null) return null;
        return op === '-' ? -v : op === '+' ? v : op === '~' ? ~v : null;
      }
      case 'binary_expression': {
        const op = target.childForFieldName('operator')?.type;
        // Shifts are 32-bit in JavaScript; the generic arithmetic would overstate them.
        if (!op || op === '<<' || op === '>>') return null;
        const left = target.childForFieldName('left');
        const right = target.childForFieldName('right');
        const a = left ? this.foldNumber(left, depth + 1) : null;
        const b = a === null || !right ? null : this.foldNumber(right, depth + 1);
        return a === null || b === null ? null : applyArithmetic(op, a, b);
      }
      case 'call_expression': {
        const fn = target.childForFieldName('function');
        const chain = fn ? this.chainOf(fn, depth + 1) : null;
        if (chain?.join('.') !== 'Math.pow') return null;
        const [a, b] = this.args(target);
        const x = a ? this.foldNumber(a, depth + 1) : null;
        const y = b ? this.foldNumber(b, depth + 1) : null;
        return x === null || y === null ? null : x ** y;
      }
      case 'identifier': {
        const value = this.constants.get(this.nameOf(target));
        return value ? this.foldNumber(value, depth + 1) : null;
      }
      default:
        return null;
    }
  }

  private truthy(node: Node, depth = 0): boolean | null {
    if (depth > MAX_NESTING) return null;
    const target = this.unwrap(node);
    switch (target.type) {
      case 'true':
        return true;
      case 'false':
      case 'null':
      case 'undefined':
        return false;
      case 'number': {
        const v = this.foldNumber(target);
        return v === null ? null : v !== 0 && !Number.isNaN(v);
      }
      case 'string':
      case 'template_string': {
        const s = this.foldString(target);
        return s?.exact ? s.value.length > 0 : null;
      }
      case 'unary_expression': {
        if (target.childForFieldName('operator')?.type !== '!') return null;
        const arg = target.childForFieldName('argument');
        const v = arg ? this.truthy(arg, depth + 1) : null;
        return v === null ? null : !v;
      }
      case 'identifier': {
        const value = this.constants.get(this.nameOf(target));
        return value ? this.truthy(value, depth + 1) : null;
      }
      default:
        return null;
    }
  }

  // ---- calls -----------------------------------------------------------------------------

  private calleeName(fn: Node): string | null {
    const target = this.unwrap(fn);
    switch (target.type) {
      case 'identifier':
        return this.nameOf(target);
      case 'member_expression': {
        const property = target.childForFieldName('property');
        return property ? this.nameOf(property) : null;
      }
      case 'subscript_expression': {
        const index = target.childForFieldName('index');
        const key = index ? this.foldString(index) : null;
        return key?.exact ? key.value : null;
      }
      default:
        return null;
    }
  }

  private call(node: Node): void {
    const fn = node.childForFieldName('function');
    if (!fn) return;
    if (fn.type === 'import') {
      this.checkLoad(node, 'import()');
      return;
    }
    const last = this.calleeName(fn);
    if (last === null || (!CALL_NAMES.has(last) && !this.bindings.isAlias(last))) return;
    const args = this.args(node);
    if (last === 'constructor' && this.isConstructorAccess(fn)) {
      if (args.some((a) => STRINGISH.has(this.unwrap(a).type))) this.constructorCall(node);
      return;
    }
    if (STRING_GROWERS.has(last) && this.unwrap(fn).type === 'member_expression') {
      this.checkSize(node, args[0], `.${last}()`, 'characters');
    }
    const chain = this.chainOf(fn, 0);
    if (!chain) return;
    for (const q of this.resolver.resolve(chain)) {
      if (REQUIRE_FUNCS.has(q)) this.checkLoad(node, 'require()');
      else if (TIMERS.has(q)) {
        const code = args[0];
        if (code && STRINGISH.has(this.unwrap(code).type)) {
          this.add('timer_string_code', code, `Passes a string to ${q}(), which runs it as code`);
        }
      } else if (ALLOC_CALLS.has(q)) {
        this.checkSize(node, args[0], `${q}()`, q === 'Array' ? 'elements' : 'bytes');
      } else if (q === 'Array.from') this.checkArrayFrom(node, args[0]);
      else if (POLLUTION_CALLS.has(q)) {
        const target = args[0];
        if (target && this.pollutionTarget(target)) {
          this.add(
            'prototype_pollution',
            target,
            `${q}() changes ${snippet(textOf(this.input.src, target))}, a prototype shared by other objects`,
          );
        }
      } else if (PROPERTY_GETTERS.has(q)) this.checkReflectGet(node, args);
      else if (CODE_CALLS.has(q)) this.checkPayload(q, q === 'Function' ? args[args.length - 1] : args[0]);
      else {
        const dot = q.indexOf('.');
        const module = q.slice(0, dot);
        if (dot > 0 && (module === 'fs' || module === 'fs/promises') && FS_FUNCS.has(q.slice(dot + 1))) {
          this.checkPaths(q, args);
        }
      }
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
    const arg = this.args(node)[0];
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
    const source = this.args(read)[0];
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

  private checkPaths(q: string, args: Node[]): void {
    const [first, second] = args;
    if (!first) return;
    for (const arg of second ? [first, second] : [first]) {
      const path = this.foldString(arg);
      if (path && classifyPath(path.value) === 'outside') {
        this.add(
          'file_access',
          arg,
          `${q}() uses "${showPath(path.value)}", which is outside the working directory`,
        );
        return;
      }
    }
    // A number is a file descriptor (0 is the run's own stdin).
    const firstPath = this.foldString(first);
    if ((!firstPath || !firstPath.exact) && this.unwrap(first).type !== 'number') {
      this.add('file_access_dynamic', first, `${q}() uses a file path computed at run time`);
    }
  }

  private newExpression(node: Node): void {
    const ctor = node.childForFieldName('constructor');
    if (!ctor) return;
    const last = this.calleeName(ctor);
    if (last === null || (!NEW_NAMES.has(last) && !this.bindings.isAlias(last))) return;
    const args = this.args(node);
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
    return DYNAMIC_TARGETS.has(q) || moduleRule(q) !== undefined;
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
    const body = node.childForFieldName('body');
    if (!body || this.hasExit(body, 0, 0, new Set())) return;
    this.add(
      'infinite_loop',
      node,
      'This loop never ends: its condition is always true and its body has no break, return, throw or exit',
    );
  }

  /** Whether control can leave the loop whose body this is. Nested functions do not count. */
  private hasExit(
    node: Node,
    loopDepth: number,
    switchDepth: number,
    innerLabels: Set<string>,
    nesting = 0,
  ): boolean {
    // Pathologically deep bodies are given the benefit of the doubt rather than a stack overflow.
    if (nesting > MAX_BODY_NESTING) return true;
    const type = node.type;
    switch (type) {
      case 'break_statement': {
        const label = node.childForFieldName('label');
        if (label) return !innerLabels.has(textOf(this.input.src, label));
        return loopDepth === 0 && switchDepth === 0;
      }
      case 'return_statement':
      case 'throw_statement':
      case 'yield_expression':
        return true;
      case 'call_expression': {
        const fn = node.childForFieldName('function');
        const chain = fn ? this.chainOf(fn, 0) : null;
        if (chain && EXIT_CALLS.has(chain.join('.'))) return true;
        break;
      }
      case 'labeled_statement': {
        const label = node.childForFieldName('label');
        if (label) innerLabels = new Set([...innerLabels, textOf(this.input.src, label)]);
        break;
      }
    }
    if (FUNCTION_TYPES.has(type)) return false;
    const nextLoop = LOOP_TYPES.has(type) ? loopDepth + 1 : loopDepth;
    const nextSwitch = type === 'switch_statement' ? switchDepth + 1 : switchDepth;
    for (const child of node.namedChildren) {
      if (this.hasExit(child, nextLoop, nextSwitch, innerLabels, nesting + 1)) return true;
    }
    return false;
  }
}

export function analyzeJavaScript(root: Node, input: AnalysisInput): void {
  new JavaScriptAnalyzer(input).run(root);
}
