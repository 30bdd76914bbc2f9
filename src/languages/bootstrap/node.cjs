// Warden's Node bootstrap: started ahead of time inside the sandbox, it blocks on fd 3 until a run
// hands it the program, writes the files into the working dir and runs the entry file exactly as
// `node main.js` would (CommonJS or ES module, detected by Node; require.main is the entry).
const fs = require('fs');
const path = require('path');
const Module = require('module');

// The lazy stdio getters cost ~5 ms on first use: pay for them while waiting in the pool.
void process.stdout;
void process.stderr;

const chunks = [];
const buf = Buffer.alloc(1 << 20);
for (let n; (n = fs.readSync(3, buf)) > 0;) chunks.push(Buffer.from(buf.subarray(0, n)));
fs.closeSync(3);
// Payload: "main\0name\0size\0name\0size…\n" then the files' bytes.
const data = Buffer.concat(chunks);
const newline = data.indexOf(10);
const parts = data.subarray(0, newline).toString('utf8').split('\0');
let at = newline + 1;
for (let i = 1; i < parts.length; i += 2) {
  const size = Number(parts[i + 1]);
  fs.writeFileSync(parts[i], data.subarray(at, at + size));
  at += size;
}
const main = path.resolve(parts[0]);
process.argv = [process.argv[0], main];
Module.runMain(main);
