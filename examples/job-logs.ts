// Run a job, follow its log live (Server-Sent Events), then download what it left in /out.
//   WARDEN_URL=http://127.0.0.1:8080 [WARDEN_API_KEY=wdn_…] npx tsx examples/job-logs.ts
import { WardenClient } from 'warden/sdk';

const warden = new WardenClient({
  baseUrl: process.env.WARDEN_URL ?? 'http://127.0.0.1:8080',
  apiKey: process.env.WARDEN_API_KEY,
});

const script = `
import json
rows = [line.split(",") for line in open("data.csv").read().split()]
for name, n in rows:
    print("read", name, flush=True)
json.dump([{"name": name, "n": int(n)} for name, n in rows], open("/out/data.json", "w"))
`;

const job = await warden.createJob({
  command: 'python3 -u convert.py',
  files: [
    { path: 'convert.py', content: Buffer.from(script).toString('base64') },
    { path: 'data.csv', content: Buffer.from('ada,1\nlin,2\n').toString('base64') },
  ],
  timeout: 30,
  resources: { cpu: '500m', memory: '256Mi', disk: '16Mi' },
});

// Ctrl-C stops following; a dropped connection resumes where it stopped.
const stop = new AbortController();
process.once('SIGINT', () => stop.abort());
for await (const event of warden.streamLogs(job.id, { signal: stop.signal })) {
  if (event.type === 'line') console.log(`[${event.stream}] ${event.line}`);
  else console.log(`job ${event.status}`);
}

for (const file of await warden.downloadArtifacts(job.id)) {
  console.log(`${file.path} (${file.size} bytes): ${new TextDecoder().decode(file.bytes)}`);
}
