import { PassThrough } from 'node:stream';

/**
 * The run's stdout and stderr as a sandbox's wrapper shell writes them: the program's output, then,
 * once the program has ended, a line `<tag> <status>` on each (the docker and gvisor wrappers). Each
 * stream is one ordered pipe, so it is complete up to its trailer, and the run ends when both have
 * come — at once, without waiting for the container or sandbox to be torn down. The tag is secret
 * per sandbox (read off stdin before the program starts); a tagged line with text instead of a
 * status is the wrapper's setup failure. Bytes after a trailer (a daemon the program left) are
 * dropped: the run is over.
 */
export class TrailedOutput {
  readonly stdout = new PassThrough();
  readonly stderr = new PassThrough();
  /** The wrapper's own failure before the program started (a tagged line of text). */
  setupFailure: string | undefined;
  private readonly marker: Buffer;
  private readonly carry: Buffer[] = [Buffer.alloc(0), Buffer.alloc(0)];
  private readonly done = [false, false];
  private status: number | undefined;

  constructor(
    tag: string,
    /** Called once, when both streams have their trailer: the program's exit status. */
    private readonly onTrailer: (status: number) => void,
  ) {
    this.marker = Buffer.from(`${tag} `);
  }

  /** Bytes of stream k (0 stdout, 1 stderr): up to the trailer they go out, the trailer ends it. */
  push(k: 0 | 1, chunk: Buffer): void {
    if (this.done[k]) return;
    const target = k === 0 ? this.stdout : this.stderr;
    const marker = this.marker;
    const data = this.carry[k]!.length ? Buffer.concat([this.carry[k]!, chunk]) : chunk;
    const at = data.indexOf(marker);
    if (at < 0) {
      // A marker may straddle two chunks: a tail that could begin one waits for the next chunk
      // (rarely more than nothing: the tag is random), everything else goes out at once.
      let keep = Math.min(marker.length - 1, data.length);
      while (keep > 0 && !data.subarray(data.length - keep).equals(marker.subarray(0, keep))) keep--;
      if (data.length > keep) target.write(data.subarray(0, data.length - keep));
      this.carry[k] = Buffer.from(data.subarray(data.length - keep));
      return;
    }
    const eol = data.indexOf(0x0a, at);
    if (at > 0) target.write(data.subarray(0, at));
    if (eol < 0) {
      this.carry[k] = Buffer.from(data.subarray(at));
      return;
    }
    const line = data.subarray(at + marker.length, eol).toString('utf8');
    this.done[k] = true;
    this.carry[k] = Buffer.alloc(0);
    target.end();
    if (!/^\d+$/.test(line)) this.setupFailure ??= line;
    else this.status = Number(line);
    if (this.done[0] && this.done[1] && this.status !== undefined) {
      // The program ran and ended: no setup failure, whatever text a tagged line said before.
      this.setupFailure = undefined;
      this.onTrailer(this.status);
    }
  }

  /** Stream k's source closed (both when k is not given): what is still open ends, without a trailer. */
  end(only?: 0 | 1): void {
    [this.stdout, this.stderr].forEach((target, k) => {
      if (this.done[k] || (only !== undefined && only !== k)) return;
      this.done[k] = true;
      if (this.carry[k]!.length) target.write(this.carry[k]);
      target.end();
    });
  }
}
