// Warden's Node bootstrap: started ahead of time inside the sandbox, it blocks on fd 3 until a run
// hands it the program, writes the files into the working dir and imports the entry file
// (CommonJS or ES module, detected by Node).
const fs = require('fs');
const path = require('path');
const { pathToFileURL } = require('url');
const chunks = [];
const buf = Buffer.alloc(1 << 20);
for (let n; (n = fs.readSync(3, buf)) > 0; ) chunks.push(Buffer.from(buf.subarray(0, n)));
fs.closeSync(3);
const payload = JSON.parse(Buffer.concat(chunks).toString('utf8'));
for (const [name, text] of Object.entries(payload.files)) fs.writeFileSync(name, text);
const main = path.resolve(payload.main);
process.argv = [process.argv[0], main];
import(pathToFileURL(main).href).catch((err) => {
  // Rethrown outside the promise so Node reports it as it would for `node main.js`.
  process.nextTick(() => {
    throw err;
  });
});
