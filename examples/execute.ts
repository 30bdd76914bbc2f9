// Run a snippet in a sandbox and print its verdict, output and usage.
//   WARDEN_URL=http://127.0.0.1:8080 [WARDEN_API_KEY=wdn_…] npx tsx examples/execute.ts
import { WardenClient, WardenError } from 'warden/sdk';

const warden = new WardenClient({
  baseUrl: process.env.WARDEN_URL ?? 'http://127.0.0.1:8080',
  apiKey: process.env.WARDEN_API_KEY,
});

const result = await warden.execute({
  language: 'python',
  code: 'import sys\nname = sys.stdin.read().strip()\nprint(f"hello, {name}")',
  stdin: 'world',
  limits: { timeout: 5, memory_limit: 128 },
});
console.log(`${result.status}: ${result.output.trim()} (${result.resource_usage.wall_time} s)`);

// Code the static analysis rejects never runs: the verdict says why.
const rejected = await warden.execute({ language: 'python', code: 'import os\nos.system("id")' });
console.log(`${rejected.status}: ${rejected.security_violations.map((v) => v.rule).join(', ')}`);

// A mistake in the request is a typed error naming the field.
try {
  await warden.execute({ language: 'cobol', code: 'DISPLAY "hi"' });
} catch (err) {
  if (!(err instanceof WardenError)) throw err;
  console.log(`refused: ${err.code} (field ${err.field}, request ${err.requestId})`);
}
