import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { constants as osConstants, endianness } from 'node:os';
import { fileURLToPath } from 'node:url';
import { signalName } from './supervise.js';

/**
 * The service end of the spawner (`warden-launch --serve`, src/sandbox/launcher/spawner.c): a small
 * process that forks and launches sandboxes so the service never forks its own large address space
 * (≈ 1 ms of its CPU per 20 MB of its memory per sandbox, its event loop stopped meanwhile). Requests
 * go on the spawner's stdin; descriptors, pids and exits come back on a Node IPC channel, the
 * descriptors as the sockets Node makes of them.
 */

/**
 * The launcher (src/sandbox/launcher/warden-launch.c, built by scripts/setup.sh), run as the service's
 * user: it closes every descriptor past the ones bwrap reads (the service may have inherited some
 * without close-on-exec), sets the rlimits, joins the run's cgroups while still root, and only then
 * becomes the leased unprivileged host user for good (no groups, no capabilities, empty bounding
 * set) and execs bwrap, so everything the run starts is inside the cgroups from its first
 * instruction. One small static process instead of bash + setpriv: ~3.5 ms of CPU less per sandbox.
 * gVisor's KVM trial goes through it too (cgroups joined, no uid change: runsc drops its own).
 */
export const LAUNCHER = fileURLToPath(new URL('../../build/warden-launch', import.meta.url));

/** Why sandboxes cannot start without the launcher, and how to build it (start errors, `warden doctor`). */
export function launcherMissing(path: string): string {
  return `the sandbox launcher ${path} is not built: run scripts/setup.sh (or scripts/build-launcher.sh; needs gcc and libc6-dev)`;
}

/** What descriptor i of the launched process is (spawner.c has the wire form). */
export type Slot =
  | { kind: 'stream' }
  | { kind: 'data'; data: Uint8Array }
  | { kind: 'file'; path: string }
  | { kind: 'null' }
  | { kind: 'status' };

/** A process the spawner started, in the shape the supervisor drives (types.ts SandboxProcess). */
export interface SpawnedProcess {
  readonly pid: number;
  /** The stream slots' sockets by descriptor number, null for the others. */
  readonly stdio: (Socket | null)[];
  readonly stdin: Socket | null;
  readonly stdout: Socket | null;
  readonly stderr: Socket | null;
  exitCode: number | null;
  signalCode: NodeJS.Signals | null;
  /** bwrap reported its sandbox's pid on the status slot before it exited. */
  started: boolean;
  /** Set when the spawner itself went away while this process ran. */
  lost?: string;
  kill(signal?: NodeJS.Signals): boolean;
  on(event: 'exit', listener: (code: number | null, signal: NodeJS.Signals | null) => void): this;
  /** Never emitted (a failed spawn rejects); there for holdProcess, which also holds ChildProcesses. */
  on(event: 'error', listener: (err: Error) => void): this;
  once(event: 'exit', listener: (code: number | null, signal: NodeJS.Signals | null) => void): this;
}

type Answer =
  | { w: 'fd'; id: number; slot: number }
  | { w: 'pid'; id: number; pid: number }
  | { w: 'error'; id: number; error: string }
  | { w: 'exit'; id: number; code: number | null; signal: number | null; started: boolean };

class Spawned extends EventEmitter implements SpawnedProcess {
  pid = 0;
  readonly stdio: (Socket | null)[];
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;
  started = false;
  lost?: string;

  constructor(
    readonly id: number,
    slots: number,
    private readonly signal: (id: number, signal: number) => void,
  ) {
    super();
    this.stdio = Array.from({ length: slots }, () => null);
  }

  get stdin() {
    return this.stdio[0] ?? null;
  }
  get stdout() {
    return this.stdio[1] ?? null;
  }
  get stderr() {
    return this.stdio[2] ?? null;
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): boolean {
    if (this.exitCode !== null || this.signalCode !== null) return false;
    this.signal(this.id, osConstants.signals[signal]);
    return true;
  }

  exited(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.exitCode !== null || this.signalCode !== null) return;
    this.exitCode = code;
    this.signalCode = signal;
    this.emit('exit', code, signal);
  }
}

const u32 = (n: number) => {
  const b = Buffer.allocUnsafe(4);
  if (endianness() === 'LE') b.writeUInt32LE(n);
  else b.writeUInt32BE(n);
  return b;
};

function cString(s: string): Buffer {
  if (s.includes('\0')) throw new Error('an argument or path holds a NUL byte');
  return Buffer.from(`${s}\0`);
}

function encodeSlot(slot: Slot): Buffer[] {
  switch (slot.kind) {
    case 'stream':
      return [Buffer.from('p')];
    case 'data':
      return [Buffer.from('d'), u32(slot.data.length), Buffer.from(slot.data)];
    case 'file':
      return [Buffer.from('f'), cString(slot.path)];
    case 'null':
      return [Buffer.from('n')];
    case 'status':
      return [Buffer.from('s')];
  }
}

function frame(parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([u32(body.length), body]);
}

export interface Spawner {
  /** Launches `warden-launch` with `args` and descriptor i = slots[i]; resolves once it runs. */
  spawn(slots: Slot[], args: string[]): Promise<SpawnedProcess>;
  /** Ends the spawner, and with it every process it started. */
  close(): Promise<void>;
  /** The spawner's pid while it runs (tests). */
  readonly pid: number | undefined;
}

export function createSpawner(launcher: string): Spawner {
  let child: ChildProcess | undefined;
  let nextId = 1;
  const running = new Map<number, Spawned>();
  const starting = new Map<number, { process: Spawned; resolve: () => void; reject: (e: Error) => void }>();

  // The spawner keeps the service's event loop alive only while something of it is outstanding.
  const hold = () => {
    const busy = running.size + starting.size > 0;
    if (busy) child?.ref();
    else child?.unref();
    const channel = child?.channel;
    if (busy) channel?.ref();
    else channel?.unref();
  };

  const send = (data: Buffer) => child?.stdin?.write(data);

  function answer(message: Answer, handle: unknown): void {
    const pending = starting.get(message.id);
    const target = pending?.process ?? running.get(message.id);
    if (message.w === 'fd') {
      const socket = handle as Socket;
      // A reset (a sandbox gone with unread input) before a run listens must not be uncaught.
      socket.on('error', () => {});
      if (target) target.stdio[message.slot] = socket;
      else socket.destroy();
    } else if (message.w === 'pid' && pending) {
      pending.process.pid = message.pid;
      starting.delete(message.id);
      running.set(message.id, pending.process);
      pending.resolve();
    } else if (message.w === 'error' && pending) {
      starting.delete(message.id);
      pending.reject(new Error(`the sandbox could not be spawned: ${message.error}`));
    } else if (message.w === 'exit' && target) {
      running.delete(message.id);
      target.started = message.started;
      target.exited(
        message.code,
        message.signal === null ? null : (signalName(message.signal) as NodeJS.Signals),
      );
    }
    hold();
  }

  function gone(c: ChildProcess, why: string): void {
    if (child !== c) return;
    child = undefined;
    for (const [id, p] of starting) {
      starting.delete(id);
      p.process.stdio.forEach((s) => s?.destroy());
      p.reject(new Error(`the sandbox spawner ${why}`));
    }
    for (const [id, p] of running) {
      running.delete(id);
      p.lost = `the sandbox spawner ${why}`;
      p.exited(null, 'SIGKILL');
    }
  }

  function ensure(): ChildProcess {
    if (child) return child;
    const c = spawn(launcher, ['--serve', String(process.pid)], {
      stdio: ['pipe', 'ignore', 'inherit', 'ipc'],
      env: { PATH: '/usr/bin:/bin' },
      cwd: '/',
    });
    c.stdin!.on('error', () => {});
    c.on('message', (m: Answer, handle: unknown) => answer(m, handle));
    c.on('error', (err) => gone(c, `could not start: ${err.message}`));
    c.on('exit', (code, signal) => gone(c, `exited (${code ?? signal})`));
    child = c;
    return c;
  }

  return {
    get pid() {
      return child?.pid;
    },
    spawn(slots, args) {
      ensure();
      const id = nextId++;
      const spawned = new Spawned(id, slots.length, (target, signal) =>
        send(frame([Buffer.from('K'), u32(target), u32(signal)])),
      );
      return new Promise<SpawnedProcess>((resolve, reject) => {
        let request: Buffer;
        try {
          request = frame([
            Buffer.from('S'),
            u32(id),
            u32(slots.length),
            ...slots.flatMap(encodeSlot),
            u32(args.length),
            ...args.map(cString),
          ]);
        } catch (err) {
          return reject(err as Error);
        }
        starting.set(id, { process: spawned, resolve: () => resolve(spawned), reject });
        hold();
        send(request);
      });
    },
    async close() {
      const c = child;
      if (!c) return;
      const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
      if (c.exitCode === null && c.signalCode === null) {
        c.ref();
        c.stdin?.end();
        await exited;
      }
    },
  };
}
