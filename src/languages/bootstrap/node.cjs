// Warden's Node bootstrap: started ahead of time inside the sandbox, it blocks on fd 3 until a run
// hands it the program, writes the files into the working dir and runs the entry file exactly as
// `node main.js` would (CommonJS or ES module, detected by Node; require.main is the entry).
//
// Load-time compile errors of main.js (SyntaxError while parsing, before evaluation) are reported on
// stderr as "\0WARDEN_COMPILE <nonce> <json>\n", then exit 1, before any user code runs. The nonce is
// the run's secret from the payload head; it lives only in this function's scope, so a program
// printing the same line cannot make its run pass for a compile error. An ES module's error has no
// position that JavaScript can read (V8 keeps it; Node prints it when the error is fatal), so for one
// the bootstrap writes "\0WARDEN_COMPILE_ESM <nonce>\n" and lets Node's own loader fail on the file:
// it stops at the parse, before any of it runs, and prints where and why after that line.
const fs = require('fs');
const path = require('path');
const Module = require('module');
const vm = require('vm');

// The lazy stdio getters cost ~5 ms on first use: pay for them while waiting in the pool.
void process.stdout;
void process.stderr;

// Node's CommonJS wrapper parameters: a script parses exactly as the loader will compile it.
const CJS_PARAMS = ['exports', 'require', 'module', '__filename', '__dirname'];
// CommonJS errors after which Node (--experimental-detect-module) retries the file as an ES module.
const ESM_HINTS = [
  'Cannot use import statement outside a module',
  "Unexpected token 'export'",
  "Cannot use 'import.meta' outside a module",
  'await is only valid in async functions',
];

const ES_MODULE = Symbol('an ES module that does not compile');

/** Why `source` parses neither as CommonJS nor as an ES module, or null. Never evaluates it. */
function loadProblem(file, source) {
  try {
    vm.compileFunction(source, CJS_PARAMS, { filename: file });
    return null;
  } catch (cjs) {
    try {
      new vm.SourceTextModule(source, { identifier: file });
      return null;
    } catch {
      // Only CommonJS errors carry a location ("file:line\nsource\n   ^\n\n…" atop the stack).
      if (ESM_HINTS.some((h) => String(cjs.message).includes(h))) return ES_MODULE;
      return locate(cjs);
    }
  }
}

function locate(err) {
  const m = /^[^\n]*:(\d+)\n[^\n]*\n( *)\^/.exec(String(err.stack));
  return {
    line: m ? Number(m[1]) : null,
    column: m ? m[2].length + 1 : null,
    message: `${err.name}: ${err.message}`,
  };
}

const args = [];
const main = (() => {
  const chunks = [];
  const buf = Buffer.alloc(1 << 20);
  for (let n; (n = fs.readSync(3, buf)) > 0;) chunks.push(Buffer.from(buf.subarray(0, n)));
  fs.closeSync(3);
  // Payload: "nonce\0main\0argc\0argsize…\0name\0size…\n" then the arguments' and the files' bytes.
  const data = Buffer.concat(chunks);
  const newline = data.indexOf(10);
  const parts = data.subarray(0, newline).toString('utf8').split('\0');
  const argc = Number(parts[2]);
  let at = newline + 1;
  for (const size of parts.slice(3, 3 + argc)) {
    args.push(data.subarray(at, at + Number(size)).toString('utf8'));
    at += Number(size);
  }
  for (let i = 3 + argc; i < parts.length; i += 2) {
    const size = Number(parts[i + 1]);
    if (parts[i].includes('/')) fs.mkdirSync(path.dirname(parts[i]), { recursive: true });
    fs.writeFileSync(parts[i], data.subarray(at, at + size));
    at += size;
  }
  const file = path.resolve(parts[1]);
  // The entry is the user's main.js or Warden's own harness (.mjs), which parses.
  if (path.extname(file) === '.js') {
    const source = fs.readFileSync(file, 'utf8').replace(/^\uFEFF/, '');
    const problem = loadProblem(file, source);
    if (problem === ES_MODULE) {
      fs.writeSync(2, `\0WARDEN_COMPILE_ESM ${parts[0]}\n`);
      return { file, failsToCompile: true };
    }
    if (problem) {
      fs.writeSync(2, `\0WARDEN_COMPILE ${parts[0]} ${JSON.stringify(problem)}\n`);
      process.exit(1);
    }
  }
  return { file, failsToCompile: false };
})();
process.argv = [process.argv[0], main.file, ...args];
// Rejected at the parse, unhandled: Node prints the position and exits 1.
if (main.failsToCompile) void import(require('url').pathToFileURL(main.file).href);
else Module.runMain(main.file);
