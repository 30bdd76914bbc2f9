import { describe, expect, it } from 'vitest';
import { LogLines } from '../../src/jobs/log-lines.js';

/** Output chunks as they come out of a run, into numbered lines. */

const text = (log: LogLines) => log.take().map((l) => `${l.seq} ${l.stream} ${l.line}`);

describe('log lines', () => {
  it('cuts lines at newlines across chunks, per stream, and keeps multi-byte characters whole', () => {
    const log = new LogLines(5, 1024, 100);
    log.push('stdout', Buffer.from('one\ntw'));
    log.push('stderr', Buffer.from('err'));
    const euro = Buffer.from('o €\n');
    log.push('stdout', euro.subarray(0, 4)); // the euro sign split in the middle
    expect(text(log)).toEqual(['5 stdout one']);
    log.push('stdout', euro.subarray(4));
    log.push('stderr', Buffer.from('or\n\n'));
    expect(text(log)).toEqual(['6 stdout two €', '7 stderr error', '8 stderr ']);
    log.push('stdout', Buffer.from('no newline at the end'));
    log.note('job completed');
    log.end();
    expect(text(log)).toEqual(['9 system job completed', '10 stdout no newline at the end']);
  });

  it('cuts a very long line into pieces and stops at the byte cap of each stream', () => {
    const log = new LogLines(1, 40_000, 10_000);
    log.push('stdout', Buffer.from(`${'x'.repeat(35_000)}\n`));
    expect(log.take().map((l) => l.line.length)).toEqual([16_384, 16_384, 2232]);
    log.push('stdout', Buffer.from('past the cap\n'.repeat(1000)));
    log.push('stderr', Buffer.from('stderr has its own cap\n'));
    const rest = log.take();
    expect(rest.filter((l) => l.stream === 'stdout').length).toBeLessThanOrEqual(Math.ceil(4999 / 13));
    expect(rest.filter((l) => l.stream === 'stderr').map((l) => l.line)).toEqual(['stderr has its own cap']);
  });

  it('keeps at most maxLines lines and says once that it cut the rest', () => {
    const log = new LogLines(1, 10_000_000, 100);
    log.push('stdout', Buffer.from('\n'.repeat(100_000)));
    const lines = log.take();
    expect(lines).toHaveLength(101);
    expect(lines.at(-1)).toMatchObject({ stream: 'system', line: 'the log was cut after 100 lines' });
    log.push('stderr', Buffer.from('more\n'));
    log.note('job completed');
    expect(log.take().map((l) => l.line)).toEqual(['job completed']);
  });
});
