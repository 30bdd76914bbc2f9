// Upload a task file, wait for its validation, then run its handler with a payload.
//   WARDEN_URL=http://127.0.0.1:8080 [WARDEN_API_KEY=wdn_…] npx tsx examples/task-file.ts
import { WardenClient } from 'warden/sdk';

const warden = new WardenClient({
  baseUrl: process.env.WARDEN_URL ?? 'http://127.0.0.1:8080',
  apiKey: process.env.WARDEN_API_KEY,
});

const upload = await warden.uploadTaskFile({
  fileName: 'word_count.py',
  content: 'async def handler(payload):\n    return {"words": len(payload.get("text", "").split())}\n',
  samplePayloads: [{ text: 'one two' }],
});
const verdict = await warden.waitForValidation(upload.validation_id, { timeoutMs: 60_000 });
console.log(`${upload.title}: ${verdict.status}`);
if (verdict.status !== 'VALIDATED') {
  console.log(verdict.reasons.join('\n'));
  process.exit(1);
}

const task = await warden.runTask('word_count', { text: 'the quick brown fox' }, { timeoutMs: 60_000 });
console.log(`task ${task.status}: ${JSON.stringify(task.result)}`);
