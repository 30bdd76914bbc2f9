import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runBare } from './bare.js';
import { setupFacts, withBenchServer } from './server.js';
import { round, summary, timed } from './stats.js';

/**
 * Jobs through the whole service: POST /jobs → job queue → job worker (cold sandbox with its own
 * /out tmpfs, log lines stored as they come, /out collected) → completed, seen by a client polling
 * GET /jobs/{id} every 5 ms; against a bare cold `python3 -c pass` in the same run, interleaved.
 * Then artifact downloads through the signed URL of a 50 MB output, against reading the same bytes
 * from a file on disk (page cache warm).
 */

const POLL_MS = 5;
const FINAL = new Set(['completed', 'failed', 'timeout', 'cancelled', 'error']);
const BIG_MB = 50;

export async function benchJobs(options: { rounds?: number } = {}): Promise<Record<string, unknown>> {
  const rounds = options.rounds ?? 40;
  return withBenchServer('jobs', async (server, config) => {
    const submit = async (body: Record<string, unknown>): Promise<{ id: string; status: string }> => {
      const res = await fetch(`${server.url}/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const accepted = (await res.json()) as { id: string };
      if (res.status !== 202) throw new Error(`POST /jobs: ${res.status} ${JSON.stringify(accepted)}`);
      for (;;) {
        const job = (await (await fetch(`${server.url}/jobs/${accepted.id}`)).json()) as {
          id: string;
          status: string;
        };
        if (FINAL.has(job.status)) return job;
        await new Promise((r) => setTimeout(r, POLL_MS));
      }
    };
    const trivial = async () => {
      const job = await submit({ command: 'python3 -c pass' });
      if (job.status !== 'completed') throw new Error(`job ${job.status}`);
    };

    for (let i = 0; i < 5; i++) await trivial(); // warm caches and connections
    const jobMs: number[] = [];
    const bareMs: number[] = [];
    for (let i = 0; i < rounds; i++) {
      jobMs.push((await timed(trivial))[0]);
      bareMs.push((await timed(() => runBare(['/usr/bin/python3', '-c', 'pass'])))[0]);
    }

    const big = await submit({
      command: `python3 -c "import os; open('/out/big.bin', 'wb').write(os.urandom(${BIG_MB} * 1024 * 1024))"`,
      resources: { memory: '512Mi', disk: '256Mi' },
    });
    if (big.status !== 'completed') throw new Error(`50 MB job ${big.status}`);
    const links = (await (await fetch(`${server.url}/jobs/${big.id}/artifacts`)).json()) as {
      url: string;
      size: number;
    }[];
    const link = links[0]!;
    const dir = mkdtempSync(join(tmpdir(), 'warden-bench-artifact-'));
    const file = join(dir, 'big.bin');
    try {
      const download = async () => {
        const bytes = Buffer.from(await (await fetch(link.url)).arrayBuffer());
        if (bytes.length !== link.size) throw new Error(`downloaded ${bytes.length} of ${link.size} bytes`);
        return bytes;
      };
      writeFileSync(file, await download());
      const downloadMs: number[] = [];
      const diskMs: number[] = [];
      for (let i = 0; i < 5; i++) {
        downloadMs.push((await timed(download))[0]);
        diskMs.push((await timed(() => readFile(file)))[0]);
      }
      const mbPerS = (ms: number) => round(link.size / 2 ** 20 / (ms / 1000), 1);
      const job = summary(jobMs);
      const bare = summary(bareMs);
      const dl = summary(downloadMs);
      const disk = summary(diskMs);
      return {
        setup: { ...setupFacts(config), poll_interval_ms: POLL_MS, artifact_store: 'local' },
        submit_to_completed_ms: {
          jobs: rounds,
          ...job,
          p50: job.median,
          bare_python_pass_ms: bare,
          ratio_p50: round(job.median / bare.median),
        },
        artifact_download: {
          bytes: link.size,
          download_mb_per_s_p50: mbPerS(dl.median),
          disk_read_mb_per_s_p50: mbPerS(disk.median),
          ratio: round(disk.median / dl.median),
        },
      };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  console.log(JSON.stringify(await benchJobs(), null, 2));
  process.exit(0);
}
