import { StringDecoder } from 'node:string_decoder';
import type { LogLine, LogStream } from '../store/jobs.js';

/**
 * Turns a run's output chunks into numbered lines as they arrive: one per `\n`, a longer line cut
 * into pieces of MAX_LINE characters, each stream kept up to its byte cap (the run is stopped at the
 * same cap by the sandbox), and at most `maxLines` lines in all (a flood of empty lines would
 * otherwise be millions of rows), past which one `system` line says the log was cut. `take()` hands
 * over what is complete so far.
 */

const MAX_LINE = 16 * 1024;

export class LogLines {
  private seq: number;
  private pending: LogLine[] = [];
  private readonly partial = new Map<LogStream, string>();
  private readonly decoders = new Map<LogStream, StringDecoder>();
  private readonly bytes = new Map<LogStream, number>();
  private lines = 0;
  private cut = false;

  constructor(
    firstSeq: number,
    private readonly capBytes: number,
    private readonly maxLines: number,
  ) {
    this.seq = firstSeq;
  }

  private emit(stream: LogStream, line: string): void {
    for (let i = 0; i === 0 || i < line.length; i += MAX_LINE) {
      if (stream !== 'system' && this.lines++ >= this.maxLines) {
        if (!this.cut) this.emit('system', `the log was cut after ${this.maxLines} lines`);
        this.cut = true;
        return;
      }
      this.pending.push({
        seq: this.seq++,
        stream,
        line: line.slice(i, i + MAX_LINE),
        time: new Date().toISOString(),
      });
    }
  }

  push(stream: 'stdout' | 'stderr', chunk: Buffer): void {
    const used = this.bytes.get(stream) ?? 0;
    if (used >= this.capBytes) return;
    const kept = chunk.length > this.capBytes - used ? chunk.subarray(0, this.capBytes - used) : chunk;
    this.bytes.set(stream, used + kept.length);
    let decoder = this.decoders.get(stream);
    if (!decoder) this.decoders.set(stream, (decoder = new StringDecoder('utf8')));
    const text = (this.partial.get(stream) ?? '') + decoder.write(kept);
    const lines = text.split('\n');
    this.partial.set(stream, lines.pop() ?? '');
    for (const line of lines) this.emit(stream, line);
  }

  /** A line of Warden's own (a restart, a cancellation), in order with the output. */
  note(line: string): void {
    this.emit('system', line);
  }

  /** The last unterminated line of each stream, once the run has ended. */
  end(): void {
    for (const [stream, decoder] of this.decoders) {
      const rest = (this.partial.get(stream) ?? '') + decoder.end();
      if (rest.length > 0) this.emit(stream, rest);
      this.partial.delete(stream);
    }
  }

  take(): LogLine[] {
    const lines = this.pending;
    this.pending = [];
    return lines;
  }
}
