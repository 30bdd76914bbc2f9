import { EventEmitter } from 'node:events';
import { PassThrough, Writable, type Duplex, type Readable } from 'node:stream';

/**
 * A started container's attached stdio in the shape the supervisor drives a sandbox process
 * (ChildProcess's stdin/stdout/stderr/stdio[3], exitCode/signalCode and the 'exit' event), over the
 * one hijacked connection Docker gives: stdin and the payload share the container's stdin (see the
 * wrapper in docker-image.ts: a length-prefixed payload, then the run's stdin), and stdout/stderr
 * arrive multiplexed in Docker's 8-byte-header frames. Emits 'trailer' with the program's status
 * once the wrapper's tagged status line has come on both streams (see docker-image.ts).
 */
export class ContainerStdio extends EventEmitter {
  readonly stdout = new PassThrough();
  readonly stderr = new PassThrough();
  readonly stdin: Writable;
  /** The payload for fd 3: what is written is sent, length-prefixed, once it is ended. */
  readonly payload: Writable;
  readonly stdio: [Writable, Readable, Readable, Writable, undefined];
  exitCode: number | null = null;
  readonly signalCode: NodeJS.Signals | null = null;
  private payloadSent = false;
  private readonly waitingStdin: { chunk: Buffer; done: (err?: Error | null) => void }[] = [];
  private stdinEnded: (() => void) | undefined;
  /** The wrapper's own failure before the program started (its line tagged with `setupTag`). */
  setupFailure: string | undefined;

  constructor(
    private readonly socket: Duplex,
    private readonly setupTag: string,
  ) {
    super();
    socket.on('error', () => {});
    this.demux();
    const payloadChunks: Buffer[] = [];
    this.payload = new Writable({
      write: (chunk: Buffer, _enc, done) => {
        payloadChunks.push(chunk);
        done();
      },
      final: (done) => {
        const data = Buffer.concat(payloadChunks);
        this.send(Buffer.concat([Buffer.from(`${data.length}\n`), data]));
        this.payloadSent = true;
        for (const w of this.waitingStdin.splice(0)) this.forward(w.chunk, w.done);
        this.stdinEnded?.();
        done();
      },
    });
    // stdin follows the payload on the wire: held back until the payload has gone.
    this.stdin = new Writable({
      write: (chunk: Buffer, _enc, done) => {
        if (this.payloadSent) this.forward(chunk, done);
        else this.waitingStdin.push({ chunk, done });
      },
      final: (done) => {
        const end = () => {
          // A half-close: the container's stdin sees EOF (StdinOnce), its output keeps coming.
          this.socket.end();
          done();
        };
        if (this.payloadSent) end();
        else this.stdinEnded = end;
      },
    });
    this.stdio = [this.stdin, this.stdout, this.stderr, this.payload, undefined];
  }

  /** Bytes for the container's stdin now (the wrapper's file header at start-up). */
  send(data: Buffer): void {
    if (!this.socket.writableEnded) this.socket.write(data);
  }

  /** The container ended: report its status the way a child process does. */
  exited(code: number | null): void {
    if (this.exitCode !== null) return;
    this.exitCode = code ?? 255;
    this.emit('exit', this.exitCode, null);
  }

  private forward(chunk: Buffer, done: (err?: Error | null) => void): void {
    if (this.socket.writableEnded) return done();
    this.socket.write(chunk, () => done());
  }

  private demux(): void {
    const marker = Buffer.from(`${this.setupTag} `);
    const targets = [this.stdout, this.stderr];
    const carry: Buffer[] = [Buffer.alloc(0), Buffer.alloc(0)];
    const done = [false, false];
    let status: number | undefined;
    /** A frame of stream k: its bytes up to the wrapper's tagged line go out; the line ends the stream. */
    const take = (k: 0 | 1, frame: Buffer) => {
      if (done[k]) return;
      const data = carry[k]!.length ? Buffer.concat([carry[k]!, frame]) : frame;
      const at = data.indexOf(marker);
      if (at < 0) {
        // A marker may straddle two frames: a tail that could begin one waits for the next frame
        // (rarely more than nothing: the tag is random), everything else goes out at once.
        let keep = Math.min(marker.length - 1, data.length);
        while (keep > 0 && !data.subarray(data.length - keep).equals(marker.subarray(0, keep))) keep--;
        if (data.length > keep) targets[k]!.write(data.subarray(0, data.length - keep));
        carry[k] = Buffer.from(data.subarray(data.length - keep));
        return;
      }
      const eol = data.indexOf(0x0a, at);
      if (at > 0) targets[k]!.write(data.subarray(0, at));
      if (eol < 0) {
        carry[k] = Buffer.from(data.subarray(at));
        return;
      }
      const line = data.subarray(at + marker.length, eol).toString('utf8');
      done[k] = true;
      carry[k] = Buffer.alloc(0);
      targets[k]!.end();
      if (!/^\d+$/.test(line)) this.setupFailure ??= line;
      else status = Number(line);
      if (done[0] && done[1] && status !== undefined) {
        // The program ran and ended: no setup failure, whatever text a tagged line said before.
        this.setupFailure = undefined;
        this.emit('trailer', status);
      }
    };
    let buffered: Buffer = Buffer.alloc(0);
    this.socket.on('data', (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      while (buffered.length >= 8) {
        const size = buffered.readUInt32BE(4);
        if (buffered.length < 8 + size) break;
        take(buffered[0] === 2 ? 1 : 0, buffered.subarray(8, 8 + size));
        buffered = buffered.subarray(8 + size);
      }
    });
    const end = () => {
      targets.forEach((t, k) => {
        if (done[k]) return;
        done[k] = true;
        if (carry[k]!.length) t.write(carry[k]);
        t.end();
      });
    };
    this.socket.once('end', end);
    this.socket.once('close', end);
  }
}
