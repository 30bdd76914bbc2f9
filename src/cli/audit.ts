import type { Command } from 'commander';
import type { AuditAction, AuditRecord } from '../store/audit.js';
import { readConfig, UsageError } from './common.js';

export interface AuditTailOptions {
  config?: string;
  tenant?: string;
  action?: string;
  lines?: number;
  follow?: boolean;
  json?: boolean;
  /** How often --follow looks for new records (ms). */
  pollMs?: number;
  /** Ends --follow (tests; the command line stops on SIGINT/SIGTERM). */
  signal?: AbortSignal;
  write?: (line: string) => void;
}

function format(r: AuditRecord): string {
  const details = Object.keys(r.details).length > 0 ? ` ${JSON.stringify(r.details)}` : '';
  return `${r.at} ${r.action} tenant=${r.tenant ?? '-'} actor=${r.actor} target=${r.target ?? '-'} outcome=${r.outcome}${details}`;
}

/**
 * `warden audit tail`: the last records of the audit log, oldest first, then (with --follow) new ones
 * as they are written. Reads the store directly, as an operator on the host (like `warden keys`).
 * Records are ordered by id; with several processes writing, one committed late may have an id below
 * one already shown and is then not followed (it is in GET /audit).
 */
export async function auditTailCommand(opts: AuditTailOptions): Promise<number> {
  const { AUDIT_ACTIONS, listAudit } = await import('../store/audit.js');
  const { openStore } = await import('../store/db.js');
  const action = opts.action as AuditAction | undefined;
  if (action !== undefined && !AUDIT_ACTIONS.includes(action))
    throw new UsageError(`--action must be one of ${AUDIT_ACTIONS.join(', ')}`);
  const lines = opts.lines ?? 20;
  if (!Number.isInteger(lines) || lines < 1 || lines > 10_000)
    throw new UsageError('--lines must be a whole number from 1 to 10000');
  const write = opts.write ?? ((line: string) => void process.stdout.write(`${line}\n`));
  const show = (r: AuditRecord) => write(opts.json ? JSON.stringify(r) : format(r));

  const store = await openStore(readConfig(opts.config));
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  opts.signal?.addEventListener('abort', onSignal);
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
  try {
    const filter = { tenant: opts.tenant, action };
    const { records } = await listAudit(store.db, { ...filter, limit: lines });
    records.reverse().forEach(show);
    let last = records.at(-1)?.id ?? 0;
    while (opts.follow && !stop.signal.aborted) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, opts.pollMs ?? 1000);
        stop.signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
      });
      const page = await listAudit(store.db, { ...filter, cursor: last, order: 'asc', limit: 1000 });
      page.records.forEach(show);
      last = page.records.at(-1)?.id ?? last;
    }
    return 0;
  } finally {
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
    opts.signal?.removeEventListener('abort', onSignal);
    await store.close();
  }
}

/** `warden audit tail` on the command line (main.ts adds it with one call). */
export function addAuditCommand(program: Command): void {
  program
    .command('audit')
    .description('the audit log: who did what')
    .command('tail')
    .description('the last records of the audit log, oldest first; --follow for new ones as they come')
    .option('--tenant <name>', "only this tenant's records")
    .option('--action <action>', 'only this action (e.g. code.rejected, job.connection_refused)')
    .option('-n, --lines <n>', 'how many records to show first (default 20)', Number)
    .option('-f, --follow', 'keep printing new records until interrupted')
    .option('--json', 'one JSON object per line')
    .action(async (opts: Omit<AuditTailOptions, 'config'>) => {
      process.exitCode = await auditTailCommand({
        ...opts,
        config: program.opts<{ config?: string }>().config,
      });
    });
}
