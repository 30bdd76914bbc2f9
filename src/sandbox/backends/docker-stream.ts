import { EventEmitter } from 'node:events';
import { Writable, type Duplex, type PassThrough, type Readable } from 'node:stream';
import { TrailedOutput } from './trailer.js';

/**
 * A started container's attached stdio in the shape the supervisor drives a sandbox process
 * (ChildProcess's stdin/stdout/stderr/stdio[3], exitCode/signalCode and the 'exit' event), over the
 * one hijacked connection Docker gives: stdin and the payload share the container's stdin (see the
 * wrapper in docker-image.ts: a length-prefixed payload, then the run's stdin), and stdout/stderr
 * arrive multiplexed in Docker's 8-byte-header frames. Emits 'trailer' with the program's status
 * once the wrapper's tagged status line has come on both streams (see docker-image.ts, trailer.ts).
 */
export class ContainerStdio extends EventEmitter {
  private readonly output: TrailedOutput;
  readonly stdout: PassThrough;
  readonly stderr: PassThrough;
  readonly stdin: Writable;
  /** The payload for fd 3: what is written is sent, length-prefixed, once it is ended. */
  readonly payload: Writable;
  readonly stdio: [Writable, Readable, Readable, Writable, undefined];
  exitCode: number | null = null;
  readonly signalCode: NodeJS.Signals | null = null;
  private payloadSent = false;
  private readonly waitingStdin: { chunk: Buffer; done: (err?: Error | null) => void }[] = [];
  private stdinEnded: (() => void) | undefined;

  constructor(
    private readonly socket: Duplex,
    setupTag: string,
  ) {
    super();
    this.output = new TrailedOutput(setupTag, (status) => this.emit('trailer', status));
    this.stdout = this.output.stdout;
    this.stderr = this.output.stderr;
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

  /** The wrapper's own failure before the program started (its line tagged with the setup tag). */
  get setupFailure(): string | undefined {
    return this.output.setupFailure;
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
    let buffered: Buffer = Buffer.alloc(0);
    this.socket.on('data', (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      while (buffered.length >= 8) {
        const size = buffered.readUInt32BE(4);
        if (buffered.length < 8 + size) break;
        this.output.push(buffered[0] === 2 ? 1 : 0, buffered.subarray(8, 8 + size));
        buffered = buffered.subarray(8 + size);
      }
    });
    const end = () => this.output.end();
    this.socket.once('end', end);
    this.socket.once('close', end);
  }
}
