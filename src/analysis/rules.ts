import { severityRank, type AnalysisLanguage, type AnalysisPolicy, type Severity } from './types.js';

export interface RuleInfo {
  id: string;
  severity: Severity;
  languages: AnalysisLanguage[];
  description: string;
}

const ALL: AnalysisLanguage[] = ['python', 'javascript', 'typescript'];
const PY: AnalysisLanguage[] = ['python'];
const JS: AnalysisLanguage[] = ['javascript', 'typescript'];

// Severity is fixed per rule id so that a rule id alone tells a client how serious a finding is;
// where a construct has degrees (an import vs. a call), it gets two rules.
const CATALOGUE = [
  {
    id: 'syntax_error',
    severity: 'high',
    languages: ALL,
    description: 'The code does not parse; it cannot be checked, so it is not run.',
  },
  {
    id: 'import_process',
    severity: 'high',
    languages: ALL,
    description:
      'Imports a module whose purpose is starting other programs (Python: subprocess, pty; Node: child_process, cluster).',
  },
  {
    id: 'import_native_code',
    severity: 'high',
    languages: PY,
    description:
      'Imports a foreign-function interface (ctypes, cffi) that can call native code and poke memory.',
  },
  {
    id: 'import_dynamic_code',
    severity: 'high',
    languages: ALL,
    description:
      'Imports a module that loads or runs code that is not in the source (Python: importlib, pickle, marshal, builtins, code, runpy, pdb; Node: vm, module, inspector, repl).',
  },
  {
    id: 'import_system',
    severity: 'medium',
    languages: ALL,
    description:
      'Imports a module with operating-system access (Python: os, shutil, signal, resource, mmap, fcntl, posix, multiprocessing, _thread; Node: fs, os, worker_threads, v8, wasi).',
  },
  {
    id: 'import_network',
    severity: 'medium',
    languages: ALL,
    description:
      'Imports a networking module (Python: socket, ssl, urllib, http, requests, httpx, aiohttp, …; Node: net, http, https, http2, dgram, dns, tls).',
  },
  {
    id: 'import_introspection',
    severity: 'medium',
    languages: PY,
    description: 'Imports an interpreter-introspection module (gc, inspect) that can reach hidden objects.',
  },
  {
    id: 'import_threading',
    severity: 'low',
    languages: PY,
    description: 'Imports a threading module (threading, concurrent).',
  },
  {
    id: 'dynamic_code',
    severity: 'critical',
    languages: ALL,
    description:
      'Runs code built from text at run time (Python: eval, exec, compile, types.CodeType; JS: eval, Function, vm.run*, .constructor("code")), which hides what the program does.',
  },
  {
    id: 'encoded_payload',
    severity: 'critical',
    languages: ALL,
    description:
      'Runs code decoded from base64, hex or rot13 (exec(base64.b64decode(…)), exec(codecs.decode(…, "rot13")), eval(atob(…)), eval(Buffer.from(…, "base64").toString())), which hides what it does.',
  },
  {
    id: 'dynamic_import',
    severity: 'high',
    languages: ALL,
    description:
      'Imports a module chosen at run time (Python: __import__, importlib.import_module; JS: require/import() with a non-literal name).',
  },
  {
    id: 'debugger_access',
    severity: 'high',
    languages: PY,
    description:
      'Starts an interactive debugger or console (breakpoint, pdb.set_trace, code.interact) that runs commands read from input.',
  },
  {
    id: 'scope_introspection',
    severity: 'medium',
    languages: PY,
    description: 'Reads the namespace of the program as a dictionary (globals, locals, vars).',
  },
  {
    id: 'dynamic_attribute',
    severity: 'high',
    languages: PY,
    description:
      'getattr/setattr/delattr/hasattr with an attribute name computed at run time or a special __dunder__ name.',
  },
  {
    id: 'introspection_escape',
    severity: 'critical',
    languages: PY,
    description:
      'Walks interpreter internals (__subclasses__, __globals__, __builtins__, __bases__, __mro__, frames, …), the usual way out of a Python sandbox.',
  },
  {
    id: 'sys_internals',
    severity: 'high',
    languages: PY,
    description:
      'Uses interpreter internals from sys (sys.modules, sys._getframe, sys.settrace, sys.meta_path, …).',
  },
  {
    id: 'file_access',
    severity: 'high',
    languages: ALL,
    description:
      'Opens or changes a file outside the working directory (an absolute path or a path with ".."); /tmp and /dev/std* are allowed.',
  },
  {
    id: 'file_access_dynamic',
    severity: 'medium',
    languages: ALL,
    description: 'Opens a file whose path is computed at run time.',
  },
  {
    id: 'process_spawn',
    severity: 'high',
    languages: ALL,
    description:
      'Starts another program or shell command (os.system, subprocess.run, child_process.exec, …).',
  },
  {
    id: 'thread_spawn',
    severity: 'high',
    languages: ALL,
    description:
      'Starts another process or a thread (multiprocessing.Process/Pool, threading.Thread, ThreadPoolExecutor, _thread.start_new_thread, new Worker, cluster.fork).',
  },
  {
    id: 'network_connect',
    severity: 'high',
    languages: ALL,
    description:
      'Opens a network connection or socket (socket.socket, urlopen, requests.get, ftplib.FTP, telnetlib.Telnet, net.connect, http.request, dgram.createSocket, …); runs have no network.',
  },
  {
    id: 'environment_dump',
    severity: 'high',
    languages: ALL,
    description:
      'Reads the whole environment at once (JSON.stringify(process.env), dict(os.environ), iterating or copying it), which leaks every variable.',
  },
  {
    id: 'process_signal',
    severity: 'high',
    languages: ALL,
    description: 'Sends a signal to a process (os.kill, process.kill).',
  },
  {
    id: 'process_exit',
    severity: 'medium',
    languages: JS,
    description: 'Ends the Node.js process abruptly (process.exit, process.abort).',
  },
  {
    id: 'environment_access',
    severity: 'medium',
    languages: ALL,
    description: 'Reads or changes environment variables (os.environ, os.getenv, process.env).',
  },
  {
    id: 'process_internals',
    severity: 'critical',
    languages: JS,
    description:
      'Uses Node.js internals that load native code or bypass the module system (process.binding, process._linkedBinding, process.dlopen, process.mainModule).',
  },
  {
    id: 'module_loader',
    severity: 'critical',
    languages: JS,
    description:
      "Reaches Node's module loader behind require (module.constructor._load, Module._load, createRequire, module.require, require.main.require, require.cache), which loads modules unseen.",
  },
  {
    id: 'global_dynamic_access',
    severity: 'high',
    languages: JS,
    description:
      'Looks up a property chosen at run time on the global object, process or a system module (globalThis[name]).',
  },
  {
    id: 'prototype_pollution',
    severity: 'high',
    languages: JS,
    description:
      'Changes a shared prototype (__proto__, constructor.prototype, Object.prototype, …), which alters every object.',
  },
  {
    id: 'constructor_escape',
    severity: 'critical',
    languages: JS,
    description:
      'Reaches the Function constructor through .constructor.constructor, the classic sandbox escape.',
  },
  {
    id: 'timer_string_code',
    severity: 'high',
    languages: JS,
    description: 'Passes a string to setTimeout/setInterval, which runs it as code.',
  },
  {
    id: 'with_statement',
    severity: 'medium',
    languages: JS,
    description: 'Uses a with statement, which makes it unclear which names the code refers to.',
  },
  {
    id: 'network_access',
    severity: 'high',
    languages: JS,
    description: 'Uses a network API (fetch, WebSocket, XMLHttpRequest, EventSource).',
  },
  {
    id: 'infinite_loop',
    severity: 'high',
    languages: ALL,
    description:
      'A loop whose condition is always true (while True, for(;;), …) and whose body has no break, return, raise/throw or exit.',
  },
  {
    id: 'huge_allocation',
    severity: 'high',
    languages: ALL,
    description:
      'A literal size above the policy limit (range(10**10), [0] * 10**9, new Array(1e9), "x".repeat(1e9), 9**9**9).',
  },
] as const satisfies readonly RuleInfo[];

export type RuleId = (typeof CATALOGUE)[number]['id'];

// Frozen copies: the catalogue is served to clients and must not be changed by one of them.
export const RULES: ReadonlyArray<RuleInfo> = Object.freeze(
  CATALOGUE.map((r) =>
    Object.freeze({ ...r, languages: Object.freeze([...r.languages]) as AnalysisLanguage[] }),
  ),
);

const SEVERITY_BY_ID = new Map<string, Severity>(CATALOGUE.map((r) => [r.id, r.severity]));

export function ruleSeverity(id: RuleId): Severity {
  // Every RuleId comes from CATALOGUE, so the lookup cannot miss.
  return SEVERITY_BY_ID.get(id) as Severity;
}

/** Rules for importing a module that the `strict` profile rejects whatever their severity. */
const STRICT_IMPORTS: ReadonlySet<string> = new Set<RuleId>([
  'import_process',
  'import_native_code',
  'import_dynamic_code',
  'import_system',
  'import_network',
]);

export type RuleAction = 'reject' | 'warn';

/**
 * What a finding of rule `id` does under `policy`: `off` never rejects; `strict` rejects the
 * dangerous-import rules; otherwise a finding rejects at or above `policy.rejectAt`.
 */
export function ruleAction(
  id: string,
  severity: Severity,
  policy: Pick<AnalysisPolicy, 'profile' | 'rejectAt'>,
): RuleAction {
  if (policy.profile === 'off') return 'warn';
  if (policy.profile === 'strict' && STRICT_IMPORTS.has(id)) return 'reject';
  return severityRank(severity) >= severityRank(policy.rejectAt) ? 'reject' : 'warn';
}
