import type { Node } from 'web-tree-sitter';
import type { FieldRole, Grammar } from '../grammar.js';
import { Walker, type Args, type Ident, type IdentRef } from '../walker.js';
import {
  concatFolded,
  decodePayload,
  decodePyEscapes,
  formatCount,
  normalizePyIdentifier,
  payloadMessage,
  referenceMessage,
  table,
  textOf,
  UNKNOWN_PART,
  type AnalysisInput,
  type FoldedString,
  type ImportRule,
  type PayloadEncoding,
} from '../common.js';
import type { RuleId } from '../rules.js';

// Node types handed to the walker by the single tree walk.
const TYPES = [
  'import_statement',
  'import_from_statement',
  'assignment',
  'identifier',
  'call',
  'subscript',
  'binary_operator',
  'while_statement',
  'for_statement',
  // Python 2 forms that the grammar still accepts but Python 3 refuses.
  'print_statement',
  'exec_statement',
];

const MODULES = table<ImportRule>({
  import_process: ['subprocess', 'pty', '_posixsubprocess', 'commands', 'pexpect'],
  import_native_code: ['ctypes', '_ctypes', 'cffi'],
  import_dynamic_code: [
    'importlib',
    'imp',
    'pkgutil',
    'zipimport',
    'pickle',
    '_pickle',
    'cPickle',
    'marshal',
    'shelve',
    'dill',
    'cloudpickle',
    'builtins',
    '__builtin__',
    'code',
    'codeop',
    'runpy',
    'pdb',
    'bdb',
  ],
  import_system: [
    'os',
    'posix',
    'nt',
    'shutil',
    'signal',
    'resource',
    'mmap',
    'fcntl',
    'multiprocessing',
    '_thread',
    'pwd',
    'grp',
    'spwd',
    'termios',
    'syslog',
  ],
  import_network: [
    'socket',
    '_socket',
    'ssl',
    'urllib',
    'urllib2',
    'urllib3',
    'http',
    'httplib',
    'requests',
    'httpx',
    'aiohttp',
    'ftplib',
    'smtplib',
    'poplib',
    'imaplib',
    'nntplib',
    'telnetlib',
    'xmlrpc',
    'socketserver',
    'websocket',
    'websockets',
    'paramiko',
    'pycurl',
  ],
  import_introspection: ['gc', 'inspect'],
  import_threading: ['threading', 'concurrent'],
});

const OS_SPAWN = [
  'system',
  'popen',
  'execl',
  'execle',
  'execlp',
  'execlpe',
  'execv',
  'execve',
  'execvp',
  'execvpe',
  'spawnl',
  'spawnle',
  'spawnlp',
  'spawnlpe',
  'spawnv',
  'spawnve',
  'spawnvp',
  'spawnvpe',
  'posix_spawn',
  'posix_spawnp',
  'fork',
  'forkpty',
  'startfile',
];

/** Qualified names whose mere use is a finding, whether called, passed around or aliased. */
const REFS = table<RuleId>({
  dynamic_code: ['eval', 'exec', 'compile', 'types.CodeType', 'types.FunctionType', 'types.LambdaType'],
  dynamic_import: [
    '__import__',
    'importlib.import_module',
    'importlib.__import__',
    'importlib.reload',
    'importlib.util.spec_from_file_location',
    'importlib.util.spec_from_loader',
    'importlib.util.find_spec',
    'importlib.util.module_from_spec',
    'importlib.util.LazyLoader',
    'importlib.machinery.SourceFileLoader',
    'importlib.machinery.SourcelessFileLoader',
    'importlib.machinery.ExtensionFileLoader',
    'importlib.machinery.PathFinder',
    'importlib.machinery.FileFinder',
    'imp.load_source',
    'imp.load_module',
    'imp.load_dynamic',
    'runpy.run_path',
    'runpy.run_module',
    'zipimport.zipimporter',
  ],
  debugger_access: [
    'breakpoint',
    'pdb.set_trace',
    'pdb.run',
    'pdb.runcall',
    'pdb.post_mortem',
    'pdb.Pdb',
    'code.interact',
    'code.InteractiveConsole',
  ],
  scope_introspection: ['globals', 'locals', 'vars'],
  process_spawn: [
    ...OS_SPAWN.map((f) => `os.${f}`),
    ...OS_SPAWN.map((f) => `posix.${f}`),
    'subprocess.run',
    'subprocess.Popen',
    'subprocess.call',
    'subprocess.check_call',
    'subprocess.check_output',
    'subprocess.getoutput',
    'subprocess.getstatusoutput',
    'pty.spawn',
    'pydoc.pipepager',
    'pydoc.tempfilepager',
    'platform.popen',
    'pty.fork',
    'asyncio.create_subprocess_exec',
    'asyncio.create_subprocess_shell',
    'commands.getoutput',
    'commands.getstatusoutput',
  ],
  thread_spawn: [
    'multiprocessing.Process',
    'multiprocessing.Pool',
    'multiprocessing.get_context',
    'multiprocessing.pool.Pool',
    'multiprocessing.pool.ThreadPool',
    'concurrent.futures.ProcessPoolExecutor',
    '_thread.start_new_thread',
    '_thread.start_new',
    // Issue 13: thread creation is a use that rejects (threads count against the run's process limit).
    'threading.Thread',
    'threading.Timer',
    'concurrent.futures.ThreadPoolExecutor',
    'multiprocessing.dummy.Pool',
  ],
  network_connect: [
    'socket.socket',
    'socket.create_connection',
    'socket.create_server',
    'socket.fromfd',
    'ssl.wrap_socket',
    'urllib.request.urlopen',
    'urllib.request.urlretrieve',
    'urllib.request.build_opener',
    'urllib.urlopen',
    'urllib.urlretrieve',
    'urllib2.urlopen',
    'urllib3.PoolManager',
    'urllib3.request',
    'http.client.HTTPConnection',
    'http.client.HTTPSConnection',
    'httplib.HTTPConnection',
    'httplib.HTTPSConnection',
    'ftplib.FTP',
    'ftplib.FTP_TLS',
    'telnetlib.Telnet',
    'smtplib.SMTP',
    'smtplib.SMTP_SSL',
    'smtplib.LMTP',
    'poplib.POP3',
    'poplib.POP3_SSL',
    'imaplib.IMAP4',
    'imaplib.IMAP4_SSL',
    'nntplib.NNTP',
    'xmlrpc.client.ServerProxy',
    'multiprocessing.connection.Client',
    'multiprocessing.connection.Listener',
    'asyncio.open_connection',
    'asyncio.start_server',
    ...['get', 'post', 'put', 'patch', 'delete', 'head', 'options', 'request', 'Session'].map(
      (f) => `requests.${f}`,
    ),
    ...['get', 'post', 'put', 'patch', 'delete', 'head', 'request', 'stream', 'Client', 'AsyncClient'].map(
      (f) => `httpx.${f}`,
    ),
    'aiohttp.ClientSession',
    'aiohttp.request',
    'paramiko.SSHClient',
    'pycurl.Curl',
    'websocket.create_connection',
    'websockets.connect',
  ],
  process_signal: ['os.kill', 'os.killpg', 'posix.kill', 'posix.killpg', 'signal.pthread_kill'],
  environment_access: [
    'os.environ',
    'os.environb',
    'os.getenv',
    'os.getenvb',
    'os.putenv',
    'os.unsetenv',
    'posix.environ',
  ],
  sys_internals: [
    'sys.modules',
    'sys._getframe',
    'sys._current_frames',
    'sys._current_exceptions',
    'sys.settrace',
    'sys.setprofile',
    'sys.call_tracing',
    'sys.meta_path',
    'sys.path_hooks',
    'sys.path_importer_cache',
    'sys.addaudithook',
    'sys.breakpointhook',
  ],
  // gc hands out every live object, modules included, without a single dunder in sight.
  introspection_escape: [
    'gc.get_objects',
    'gc.get_referrers',
    'gc.get_referents',
    // Frames lead to every caller's globals and builtins (f_globals, f_builtins).
    'inspect.currentframe',
    'inspect.stack',
    'inspect.trace',
    'inspect.getouterframes',
    'inspect.getinnerframes',
  ],
});

/** Builtins that are dangerous by name; a bare reference to one is resolved and checked. */
const BUILTIN_REFS = new Set([...REFS.keys()].filter((k) => !k.includes('.')));
/** Last segments of REFS entries: an attribute with one of these names is worth resolving (`builtins.exec` too). */
const MEMBER_NAMES = new Set([...REFS.keys()].map((k) => k.split('.').pop() as string));

const ESCAPE_PURPOSE = 'an interpreter internal commonly used to break out of a sandbox';

// __class__ and __dict__ alone are everyday Python (reprs, serialisers); the escapes go on from them
// through __base__/__bases__/__mro__/__subclasses__/__globals__, which are flagged where they appear.
const ESCAPE_DUNDERS = new Set([
  '__subclasses__',
  '__globals__',
  '__builtins__',
  '__code__',
  '__bases__',
  '__base__',
  '__mro__',
  '__getattribute__',
  '__loader__',
  '__spec__',
  '__closure__',
]);

const FRAME_ATTRS = new Set([
  'f_globals',
  'f_locals',
  'f_builtins',
  'f_back',
  'gi_frame',
  'cr_frame',
  'ag_frame',
  'tb_frame',
]);

// Dunders that ordinary code reads through getattr/hasattr all the time and that lead nowhere.
const SAFE_DUNDERS = new Set([
  '__name__',
  '__qualname__',
  '__doc__',
  '__module__',
  '__annotations__',
  '__version__',
  '__len__',
  '__iter__',
  '__next__',
  '__call__',
  '__enter__',
  '__exit__',
  '__aenter__',
  '__aexit__',
  '__eq__',
  '__hash__',
  '__str__',
  '__repr__',
  '__getitem__',
  '__setitem__',
  '__contains__',
  '__slots__',
  '__wrapped__',
  '__dataclass_fields__',
]);

const OPEN_FUNCS = new Set(['open', 'io.open', 'codecs.open', 'os.open', 'posix.open', 'io.FileIO']);

const PATH_FUNCS = new Set([
  ...[
    'listdir',
    'scandir',
    'walk',
    'remove',
    'unlink',
    'rmdir',
    'removedirs',
    'mkdir',
    'makedirs',
    'rename',
    'renames',
    'replace',
    'chmod',
    'chown',
    'lchown',
    'stat',
    'lstat',
    'readlink',
    'symlink',
    'link',
    'truncate',
    'chdir',
    'chroot',
    'access',
    'utime',
    'mkfifo',
    'mknod',
  ].map((f) => `os.${f}`),
  ...[
    'copy',
    'copy2',
    'copyfile',
    'copytree',
    'copymode',
    'copystat',
    'rmtree',
    'move',
    'chown',
    'make_archive',
    'unpack_archive',
    'disk_usage',
  ].map((f) => `shutil.${f}`),
  'pathlib.Path',
  'pathlib.PurePath',
  'pathlib.PosixPath',
  'glob.glob',
  'glob.iglob',
]);

const ATTR_FUNCS = new Set(['getattr', 'setattr', 'delattr', 'hasattr']);
const IMPORT_FUNCS = new Set(['__import__', 'importlib.import_module']);
/** Functions that look attributes up by a name given as text (`attrgetter("system")(os)`). */
const GETTER_FUNCS = new Set(['operator.attrgetter', 'operator.methodcaller']);
const ALLOC_FUNCS = new Set(['bytearray', 'bytes']);
const CODE_FUNCS = new Set(['exec', 'eval', 'compile']);
/** Calls that decode a payload, by the encoding they undo (codecs.* take it as an argument). */
const DECODERS = table<PayloadEncoding>({
  base64: [
    'base64.b64decode',
    'base64.standard_b64decode',
    'base64.urlsafe_b64decode',
    'base64.decodebytes',
    'base64.decodestring',
    'binascii.a2b_base64',
  ],
  hex: ['base64.b16decode', 'binascii.unhexlify', 'binascii.a2b_hex', 'bytes.fromhex', 'bytearray.fromhex'],
});
const CODEC_NAMES = table<PayloadEncoding>({
  base64: ['base64', 'base_64', 'base64_codec'],
  hex: ['hex', 'hex_codec'],
  rot13: ['rot13', 'rot_13'],
});
const DECODER_NAMES = new Set(
  [...DECODERS.keys(), 'codecs.decode', 'codecs.encode'].map((k) => k.split('.').pop() as string),
);
/** Methods that turn text into bytes and back without changing the characters. */
const TEXT_CODECS = new Set(['decode', 'encode']);
const ENDLESS_ITERATORS = new Set(['itertools.count', 'itertools.cycle']);

/** Last segment of any callee the call handler cares about; other calls are skipped cheaply. */
const CALL_NAMES = new Set<string>(
  [
    ...OPEN_FUNCS,
    ...PATH_FUNCS,
    ...ATTR_FUNCS,
    ...IMPORT_FUNCS,
    ...ALLOC_FUNCS,
    ...GETTER_FUNCS,
    ...CODE_FUNCS,
    'range',
    'Path',
    'PurePath',
    'PosixPath',
  ].map((k) => k.split('.').pop() as string),
);

/** Calls whose result we can name: modules from import functions, attributes from getattr/vars. */
const RESULT_CALLS = new Set(['__import__', 'import_module', 'getattr', 'vars']);

const SEQUENCE_LITERALS = new Set(['string', 'concatenated_string', 'list', 'tuple']);

function isDunder(name: string): boolean {
  return name.length > 4 && name.startsWith('__') && name.endsWith('__');
}

function normalize(chain: string[]): string {
  // builtins.eval and __builtins__.eval are eval.
  const start = chain.length > 1 && (chain[0] === 'builtins' || chain[0] === '__builtins__') ? 1 : 0;
  return chain.slice(start).join('.');
}

const PARAMETER_PARENTS = new Set([
  'parameters',
  'lambda_parameters',
  'default_parameter',
  'typed_parameter',
  'typed_default_parameter',
  'list_splat_pattern',
  'dictionary_splat_pattern',
]);

type CallKind = 'open' | 'paths' | 'attr' | 'getter' | 'import' | 'range' | 'alloc' | 'code';

/** What each call the checks care about is checked for. */
const CALL_KINDS = table<CallKind>({
  open: [...OPEN_FUNCS],
  paths: [...PATH_FUNCS, 'Path'],
  attr: [...ATTR_FUNCS],
  getter: [...GETTER_FUNCS],
  import: [...IMPORT_FUNCS],
  range: ['range'],
  alloc: [...ALLOC_FUNCS],
  code: [...CODE_FUNCS],
});

const NAME_ROLE: FieldRole = { field: 'name', match: 'declaration', other: 'reference' };
const LEFT_BINDS: FieldRole = { field: 'left', match: 'binding', other: 'reference' };

export const PYTHON: Grammar = {
  walkTypes: TYPES,
  identifierTypes: new Set(['identifier']),
  identifier: 'identifier',
  member: { type: 'attribute', object: 'object', property: 'attribute', propertyType: 'identifier' },
  subscript: { type: 'subscript', object: 'value', index: 'subscript' },
  call: {
    type: 'call',
    callee: 'function',
    arguments: 'arguments',
    argumentList: 'argument_list',
    keyword: 'keyword_argument',
    splats: new Set(['list_splat', 'dictionary_splat']),
    stopAtSplat: false,
  },
  binary: 'binary_operator',
  unary: 'unary_operator',
  not: { type: 'not_operator' },
  numbers: new Set(['integer', 'float']),
  strings: new Set(['string']),
  trues: new Set(['true']),
  falses: new Set(['false', 'none']),
  booleansAreNumbers: true,
  unfoldedOperators: new Set(),
  // Python integers are unbounded: ~v is -v - 1.
  bitNot: (v) => -v - 1,
  unwrapFirst: new Set(['parenthesized_expression']),
  unwrapLast: new Set(),
  globalObjects: new Set(),
  loops: {
    types: new Set(['while_statement', 'for_statement']),
    exits: new Set(['return_statement', 'raise_statement', 'yield']),
    scopes: new Set(['function_definition', 'class_definition', 'decorated_definition', 'lambda']),
    breakType: 'break_statement',
    exitCalls: new Set(['exit', 'quit', 'sys.exit', 'os._exit', 'os.abort']),
  },
  environment: {
    names: new Set(['os.environ', 'os.environb', 'posix.environ']),
    // An argument, a splat, a value returned or formatted: handed on whole.
    dumpParents: new Set([
      'argument_list',
      'keyword_argument',
      'list_splat',
      'dictionary_splat',
      'return_statement',
      'interpolation',
      'list',
      'tuple',
      'pair',
      'yield',
    ]),
    loops: new Set(['for_statement', 'for_in_clause']),
    dumpers: new Set(['items', 'keys', 'values', 'copy', '__iter__', '__repr__', '__str__']),
    concatenates: false,
  },
  fieldRoles: new Map<string, FieldRole>([
    ['attribute', { field: 'attribute', match: 'member', other: 'reference' }],
    ['keyword_argument', NAME_ROLE],
    ['default_parameter', NAME_ROLE],
    ['typed_default_parameter', NAME_ROLE],
    ['function_definition', NAME_ROLE],
    ['class_definition', NAME_ROLE],
    ['assignment', LEFT_BINDS],
    ['augmented_assignment', LEFT_BINDS],
    ['for_statement', LEFT_BINDS],
    ['for_in_clause', LEFT_BINDS],
    ['named_expression', { field: 'name', match: 'binding', other: 'reference' }],
  ]),
  fixedRoles: new Map([
    ...[
      'parameters',
      'lambda_parameters',
      'typed_parameter',
      'list_splat_pattern',
      'dictionary_splat_pattern',
      'dotted_name',
      'aliased_import',
      'import_from_statement',
      'global_statement',
      'nonlocal_statement',
    ].map((t): [string, 'declaration'] => [t, 'declaration']),
    ...['pattern_list', 'tuple_pattern', 'list_pattern', 'as_pattern_target', 'delete_statement'].map(
      (t): [string, 'binding'] => [t, 'binding'],
    ),
  ]),
  modules: MODULES,
  moduleSeparator: '.',
  refs: REFS,
  shadowable: BUILTIN_REFS,
  callKinds: CALL_KINDS,
  callNames: CALL_NAMES,
  aliasCarriers: new Set([
    ...BUILTIN_REFS,
    ...MEMBER_NAMES,
    ...CALL_NAMES,
    ...ESCAPE_DUNDERS,
    ...MODULES.keys(),
    'sys',
    'types',
    'itertools',
  ]),
  normalize,
};

class PythonAnalyzer extends Walker {
  /** Bodies of functions with a parameter named like a dangerous builtin, by name. */
  private readonly parameterScopes = new Map<string, [number, number][]>();
  private readonly globalNames = new Set<string>();

  constructor(input: AnalysisInput) {
    super(input, PYTHON);
  }

  protected readonly collectors = new Map<string, (node: Node) => void>([
    ['import_statement', (node) => this.importStatement(node)],
    ['import_from_statement', (node) => this.importFrom(node)],
    ['assignment', (node) => this.assignment(node)],
  ]);

  protected readonly checkers = new Map<string, (node: Node) => void>([
    ['call', (node) => this.pyCall(node)],
    ['subscript', (node) => this.subscript(node)],
    ['binary_operator', (node) => this.binaryOperator(node)],
    ['while_statement', (node) => this.whileStatement(node)],
    ['for_statement', (node) => this.forStatement(node)],
    ['print_statement', (node) => this.python2Statement(node, 'print')],
    ['exec_statement', (node) => this.python2Statement(node, 'exec')],
  ]);

  private pyCall(node: Node): void {
    const fn = node.childForFieldName('function');
    if (fn) this.call(node, fn);
  }

  private python2Statement(node: Node, keyword: string): void {
    this.add(
      'syntax_error',
      node,
      `Syntax error: Python 2 ${keyword} statement; Python 3 needs a call with parentheses`,
    );
  }

  protected checkCall(kind: string, q: string, node: Node, args: Args): void {
    switch (kind as CallKind) {
      case 'open':
        this.checkOpen(q, args);
        break;
      case 'paths':
        this.checkPaths(q, args.positional);
        break;
      case 'attr':
        this.checkAttrFunc(q, node, args);
        break;
      case 'getter':
        this.checkGetter(q, args);
        break;
      case 'import': {
        const arg = args.positional[0] ?? args.keyword.get('name');
        const module = arg ? this.foldString(arg) : null;
        if (arg && module?.exact) this.checkImport(module.value, arg);
        break;
      }
      case 'range':
        this.checkRange(node, args);
        break;
      case 'alloc': {
        const n = args.positional[0];
        const v = n ? this.foldNumber(n) : null;
        if (v !== null && v > this.input.policy.maxLiteralRange) {
          this.add('huge_allocation', node, this.hugeMessage(`${q}(${formatCount(v)})`, v, 'bytes'));
        }
        break;
      }
      case 'code': {
        const code = args.positional[0] ?? args.keyword.get('source');
        const payload = code ? this.foldString(code) : null;
        if (code && payload?.decodedFrom)
          this.add('encoded_payload', code, payloadMessage(`${q}()`, payload));
        break;
      }
    }
  }

  // ---- identifiers -----------------------------------------------------------------------

  protected wantsIdentifier({ name }: Ident): boolean {
    return (
      ESCAPE_DUNDERS.has(name) ||
      FRAME_ATTRS.has(name) ||
      MEMBER_NAMES.has(name) ||
      BUILTIN_REFS.has(name) ||
      this.bindings.isAlias(name)
    );
  }

  protected override noteBinding({ name, parent }: IdentRef): void {
    if (!BUILTIN_REFS.has(name)) return;
    this.bindings.countBinding(name);
    const parentType = parent.type;
    if (parentType === 'global_statement' || parentType === 'nonlocal_statement') this.globalNames.add(name);
    else if (PARAMETER_PARENTS.has(parentType)) this.recordParameter(name, parent);
  }

  protected checkIdentifier({ node, name, parent, role }: IdentRef): void {
    if (ESCAPE_DUNDERS.has(name) && role !== 'declaration') {
      this.add('introspection_escape', node, referenceMessage('introspection_escape', name));
    }
    if (role === 'member') {
      if (FRAME_ATTRS.has(name)) {
        this.add('introspection_escape', node, `Uses the frame attribute ${name}, ${ESCAPE_PURPOSE}`);
      }
      if (MEMBER_NAMES.has(name)) this.checkChain(parent, node);
    } else if (role === 'reference') {
      if (BUILTIN_REFS.has(name) && this.isParameter(name, node)) return;
      const star = this.bindings.starModules.length > 0;
      if (BUILTIN_REFS.has(name) || this.bindings.isAlias(name) || (star && MEMBER_NAMES.has(name))) {
        for (const q of this.resolver.resolve([name])) this.checkRef(q, node);
      }
    }
  }

  protected decodeName(text: string): string {
    return normalizePyIdentifier(text);
  }

  // ---- bindings --------------------------------------------------------------------------

  private dottedName(node: Node): string[] {
    return node.namedChildren.filter((c) => c.type === 'identifier').map((c) => this.nameOf(c));
  }

  private importStatement(node: Node): void {
    const topLevel = node.parent?.type === 'module';
    for (const child of node.childrenForFieldName('name')) {
      if (child.type === 'dotted_name') {
        const path = this.dottedName(child);
        this.checkImport(path.join('.'), child);
        // `import a.b.c` binds `a`.
        if (path[0]) this.bindings.addImport(path[0], [path[0]], topLevel);
      } else if (child.type === 'aliased_import') {
        const name = child.childForFieldName('name');
        const alias = child.childForFieldName('alias');
        if (!name) continue;
        const path = this.dottedName(name);
        this.checkImport(path.join('.'), name);
        if (alias) this.bindings.addImport(this.nameOf(alias), path, topLevel);
      }
    }
  }

  private importFrom(node: Node): void {
    const moduleNode = node.childForFieldName('module_name');
    // Relative imports (`from . import x`) name the user's own files.
    if (!moduleNode || moduleNode.type !== 'dotted_name') return;
    const module = this.dottedName(moduleNode);
    const moduleName = module.join('.');
    this.checkImport(moduleName, moduleNode);
    const topLevel = node.parent?.type === 'module';
    for (const child of node.namedChildren) {
      if (child.type === 'wildcard_import') {
        this.bindings.starModules.push(moduleName);
        continue;
      }
      let nameNode: Node | null = null;
      let aliasNode: Node | null = null;
      if (child.type === 'aliased_import') {
        nameNode = child.childForFieldName('name');
        aliasNode = child.childForFieldName('alias');
      } else if (child.type === 'dotted_name' && child.id !== moduleNode.id) {
        nameNode = child;
      }
      if (!nameNode) continue;
      const path = [...module, ...this.dottedName(nameNode)];
      this.checkRef(normalize(path), nameNode);
      const bound = aliasNode ? this.nameOf(aliasNode) : path[path.length - 1];
      if (bound) this.bindings.addImport(bound, path, topLevel);
    }
  }

  // ---- identifiers -----------------------------------------------------------------------

  /**
   * Records the body of the function that a parameter named like a dangerous builtin belongs to:
   * inside that body the name is the parameter, not the builtin (`def f(compile=False)`).
   */
  private recordParameter(name: string, parent: Node): void {
    let owner: Node | null = parent;
    for (let i = 0; owner && i < 4; i++, owner = owner.parent) {
      const type = owner.type;
      if (type === 'function_definition' || type === 'lambda') {
        const body = owner.childForFieldName('body');
        if (!body) return;
        const list = this.parameterScopes.get(name) ?? [];
        list.push([body.startIndex, body.endIndex]);
        this.parameterScopes.set(name, list);
        return;
      }
      if (!PARAMETER_PARENTS.has(type)) return;
    }
  }

  private isParameter(name: string, node: Node): boolean {
    // `global name` anywhere could point an inner function back at the builtin: trust nothing then.
    if (this.globalNames.has(name)) return false;
    const at = node.startIndex;
    return this.parameterScopes.get(name)?.some(([start, end]) => at >= start && at < end) ?? false;
  }

  // ---- expressions -----------------------------------------------------------------------

  protected override subscriptChain(base: string[], key: string): string[] {
    // `sys.modules['os']` is the os module; `__builtins__['eval']` is eval.
    if (base.length === 2 && base[0] === 'sys' && base[1] === 'modules') return key.split('.');
    // `builtins.__dict__['exec']` and `os.__dict__['system']` are the attributes themselves.
    if (base.length > 1 && base[base.length - 1] === '__dict__') return [...base.slice(0, -1), key];
    return [...base, key];
  }

  /** What a call returns, when it is a module or attribute we can name (`__import__('os')`). */
  protected callChain(node: Node, depth: number): string[] | null {
    const fn = node.childForFieldName('function');
    if (!fn) return null;
    const fnChain = this.chainOf(fn, depth + 1);
    if (!fnChain) return null;
    const last = fnChain[fnChain.length - 1] as string;
    if (!RESULT_CALLS.has(last) && !(fnChain.length === 1 && this.bindings.isAlias(last))) return null;
    const args = this.args(node);
    for (const q of this.resolver.resolve(fnChain, depth + 1)) {
      if (IMPORT_FUNCS.has(q)) {
        const arg = args.positional[0] ?? args.keyword.get('name');
        const module = arg ? this.foldString(arg) : null;
        if (!module?.exact) return null;
        const parts = module.value.split('.');
        // __import__('a.b') returns package a unless a fromlist is given.
        return q === '__import__' && args.positional.length < 4 && !args.keyword.has('fromlist')
          ? parts.slice(0, 1)
          : parts;
      }
      if (q === 'getattr' || q === 'vars') {
        const target = args.positional[0];
        const base = target ? this.chainOf(target, depth + 1) : null;
        if (!base) return null;
        if (q === 'vars') return base;
        const attr = args.positional[1] ? this.foldString(args.positional[1]) : null;
        return attr?.exact ? [...base, attr.value] : null;
      }
    }
    return null;
  }

  protected foldLiteral(node: Node): FoldedString | null {
    if (node.type === 'string') return this.stringLiteral(node);
    if (node.type !== 'concatenated_string') return null;
    let result: FoldedString | null = { value: '', exact: true };
    for (const part of node.namedChildren) {
      if (part.type === 'string') result = concatFolded(result, this.stringLiteral(part));
    }
    return result;
  }

  private stringLiteral(node: Node): FoldedString {
    let prefix = '';
    let value = '';
    let exact = true;
    for (const child of node.namedChildren) {
      const type = child.type;
      if (type === 'string_start') {
        prefix = textOf(this.input.src, child).toLowerCase();
      } else if (type === 'string_content') {
        let piece = decodePyEscapes(
          textOf(this.input.src, child),
          prefix.includes('r'),
          prefix.includes('b'),
        );
        if (piece === null) {
          exact = false;
          piece = UNKNOWN_PART;
        } else if (prefix.includes('f') || prefix.includes('t')) {
          piece = piece.split('{{').join('{').split('}}').join('}');
        }
        value += piece;
      } else if (type === 'interpolation') {
        exact = false;
        value += UNKNOWN_PART;
      }
    }
    return { value, exact };
  }

  /**
   * The text a decoding call yields: `base64.b64decode('…')`, `bytes.fromhex('…')`,
   * `codecs.decode('…', 'rot13')`, and `.decode()` of folded bytes.
   */
  protected foldCall(node: Node, depth: number): FoldedString | null {
    const fn = node.childForFieldName('function');
    if (!fn) return null;
    const callee = this.unwrap(fn);
    const args = this.args(node);
    const first = args.positional[0];
    if (callee.type === 'attribute') {
      const attribute = callee.childForFieldName('attribute');
      const object = callee.childForFieldName('object');
      // bytes.decode() / str.encode() keep the characters we track.
      if (attribute && object && TEXT_CODECS.has(this.nameOf(attribute))) {
        const inner = this.foldString(object, depth + 1);
        if (inner) return inner;
      }
    }
    if (!first) return null;
    const chain = this.chainOf(fn, depth + 1);
    const last = chain?.[chain.length - 1];
    if (!chain || !last || (!DECODER_NAMES.has(last) && !this.bindings.isAlias(last))) return null;
    for (const q of this.resolver.resolve(chain, depth + 1)) {
      let encoding = DECODERS.get(q);
      if (q === 'codecs.decode' || q === 'codecs.encode') {
        const codec = args.positional[1] ?? args.keyword.get('encoding');
        const name = codec ? this.foldString(codec, depth + 1) : null;
        encoding = name?.exact ? CODEC_NAMES.get(name.value.toLowerCase().replace('-', '_')) : undefined;
      }
      if (!encoding) continue;
      const payload = this.foldString(first, depth + 1);
      return payload ? decodePayload(payload, encoding) : null;
    }
    return null;
  }

  // ---- calls -----------------------------------------------------------------------------

  private checkOpen(q: string, args: Args): void {
    const arg = args.positional[0] ?? args.keyword.get('file') ?? args.keyword.get('path');
    if (arg) this.checkPaths(q, [arg], 'opens');
  }

  /**
   * operator.attrgetter("a.b")/methodcaller("m"): the names are text, so a dangerous or computed one
   * is reported (methodcaller takes one name, the rest are the call's arguments).
   */
  private checkGetter(q: string, args: Args): void {
    const names = q === 'operator.methodcaller' ? args.positional.slice(0, 1) : args.positional;
    for (const arg of names) {
      const folded = this.foldString(arg);
      if (!folded?.exact) {
        this.add('dynamic_attribute', arg, `${q}() uses an attribute name computed at run time`);
        continue;
      }
      for (const attr of folded.value.split('.')) {
        if (ESCAPE_DUNDERS.has(attr) || FRAME_ATTRS.has(attr)) {
          this.add('introspection_escape', arg, `${q}() reaches "${attr}", ${ESCAPE_PURPOSE}`);
        } else if (MEMBER_NAMES.has(attr) || (isDunder(attr) && !SAFE_DUNDERS.has(attr))) {
          this.add('dynamic_attribute', arg, `${q}() reaches "${attr}" by name, which hides what it calls`);
        }
      }
    }
  }

  private checkAttrFunc(q: string, node: Node, args: Args): void {
    const nameArg = args.positional[1];
    if (!nameArg) return;
    const folded = this.foldString(nameArg);
    if (!folded || !folded.exact) {
      this.add(
        'dynamic_attribute',
        nameArg,
        `${q}() uses an attribute name computed at run time, which can hide what it reaches`,
      );
      return;
    }
    const attr = folded.value;
    if (nameArg.type !== 'string') {
      // Folded from pieces ('ev' + 'al'): we see through it, but spelling a name in pieces is obfuscation.
      this.add(
        'dynamic_attribute',
        nameArg,
        `${q}() uses an attribute name built from other values ("${attr}")`,
      );
    }
    if (ESCAPE_DUNDERS.has(attr) || FRAME_ATTRS.has(attr)) {
      this.add('introspection_escape', nameArg, `${q}() reaches "${attr}", ${ESCAPE_PURPOSE}`);
    } else if (isDunder(attr) && !SAFE_DUNDERS.has(attr)) {
      this.add('dynamic_attribute', nameArg, `${q}() accesses the special attribute "${attr}"`);
    }
    const target = args.positional[0];
    if (q === 'getattr' && target) {
      const base = this.chainOf(target, 0);
      if (base) for (const r of this.resolver.resolve([...base, attr])) this.checkRef(r, node);
    }
  }

  private checkRange(node: Node, args: Args): void {
    const [a, b, c] = args.positional;
    if (!a) return;
    const stop = this.foldNumber(b ?? a);
    if (stop === null) return;
    const start = b ? (this.foldNumber(a) ?? 0) : 0;
    const step = c ? this.foldNumber(c) : 1;
    const count = (stop - start) / (step && step > 0 ? step : 1);
    if (count > this.input.policy.maxLiteralRange) {
      this.add('huge_allocation', node, this.hugeMessage('range()', count, 'numbers'));
    }
  }

  // ---- other shapes ----------------------------------------------------------------------

  private subscript(node: Node): void {
    const index = node.childForFieldName('subscript');
    if (!index) return;
    const indexType = this.unwrap(index).type;
    if (indexType === 'integer' || indexType === 'slice') return;
    const key = this.foldString(index);
    if (!key?.exact) return;
    if (ESCAPE_DUNDERS.has(key.value) || FRAME_ATTRS.has(key.value)) {
      this.add('introspection_escape', index, `Looks up "${key.value}", ${ESCAPE_PURPOSE}`);
    }
    // A dictionary view of a module or of builtins: vars(os)['system'], __builtins__['eval'].
    if (MEMBER_NAMES.has(key.value)) this.checkChain(node, index);
  }

  private binaryOperator(node: Node): void {
    const op = node.childForFieldName('operator')?.type;
    if (op !== '*' && op !== '**' && op !== '<<') return;
    const left = node.childForFieldName('left');
    const right = node.childForFieldName('right');
    if (!left || !right) return;
    const max = this.input.policy.maxLiteralRange;
    if (op === '*') {
      const leftSeq = SEQUENCE_LITERALS.has(this.unwrap(left).type);
      const rightSeq = !leftSeq && SEQUENCE_LITERALS.has(this.unwrap(right).type);
      if (!leftSeq && !rightSeq) return;
      const n = this.foldNumber(leftSeq ? right : left);
      if (n !== null && n > max) {
        this.add('huge_allocation', node, this.hugeMessage('Repeating a sequence', n, 'items'));
      }
      return;
    }
    // Python integers are unbounded, so 9**9**9 is not an overflow but minutes of CPU and gigabytes.
    const base = this.foldNumber(left);
    const exponent = base === null ? null : this.foldNumber(right);
    if (base === null || exponent === null || exponent <= 0) return;
    const digits = op === '**' ? exponent * Math.log10(Math.abs(base)) : exponent * Math.LOG10E * Math.LN2;
    if (digits > max) {
      this.add(
        'huge_allocation',
        node,
        `This power has about ${formatCount(digits)} digits, above the limit of ${formatCount(max)}`,
      );
    }
  }

  private whileStatement(node: Node): void {
    const condition = node.childForFieldName('condition');
    if (!condition || this.truthy(condition) !== true) return;
    this.endlessUnlessExit(
      node,
      'This while loop never ends: its condition is always true and its body has no break, return, raise or exit',
    );
  }

  private forStatement(node: Node): void {
    const right = node.childForFieldName('right');
    if (!right || right.type !== 'call') return;
    const fn = right.childForFieldName('function');
    const chain = fn ? this.chainOf(fn, 0) : null;
    if (!chain) return;
    const qs = this.resolver.resolve(chain);
    const endless =
      qs.some((q) => ENDLESS_ITERATORS.has(q)) ||
      (qs.includes('itertools.repeat') && this.args(right).positional.length === 1);
    if (endless) {
      this.endlessUnlessExit(
        node,
        'This for loop never ends: it iterates over an endless iterator and its body has no break, return, raise or exit',
      );
    }
  }
}

export function analyzePython(root: Node, input: AnalysisInput): void {
  new PythonAnalyzer(input).run(root);
}
