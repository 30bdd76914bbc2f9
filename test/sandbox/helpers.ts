import { readdirSync, readFileSync } from 'node:fs';
import { sandboxConfigSchema, type SandboxConfig } from '../../src/config/schema.js';
import { createEngine, type Engine } from '../../src/sandbox/engine.js';
import { LANGUAGES, buildRun, type LanguageId } from '../../src/languages/index.js';
import type { Limits, RunResult } from '../../src/sandbox/types.js';

export const MiB = 1024 * 1024;

export function testEngine(overrides: Partial<SandboxConfig> = {}): Engine {
  return createEngine(sandboxConfigSchema.parse({ pool: { size: 0 }, ...overrides }));
}

export async function runCode(
  engine: Engine,
  language: LanguageId,
  code: string,
  options: { stdin?: string; limits?: Partial<Limits>; backend?: 'bwrap' | 'process' } = {},
): Promise<RunResult> {
  const spec = await buildRun(LANGUAGES[language], code, options);
  return engine.run(spec, { backend: options.backend });
}

export interface HostProcess {
  pid: number;
  uids: number[];
  cmdline: string;
}

/** Every process on the host as the host sees it (real/effective/saved/fs uids). */
export function hostProcesses(): HostProcess[] {
  const out: HostProcess[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const status = readFileSync(`/proc/${name}/status`, 'utf8');
      const uidLine = status.split('\n').find((l) => l.startsWith('Uid:')) ?? '';
      const uids = uidLine.split(/\s+/).slice(1).map(Number);
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8').replace(/\0/g, ' ');
      out.push({ pid: Number(name), uids, cmdline });
    } catch {
      /* exited meanwhile */
    }
  }
  return out;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
