import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { syscallName } from './seccomp.js';
import type { DecodedExit, Violation } from './types.js';

const AUDIT_ARCH: Record<string, 'x86_64' | 'aarch64'> = { c000003e: 'x86_64', c00000b7: 'aarch64' };

/**
 * Reads the kernel's audit multicast group (NETLINK_AUDIT, AUDIT_NLGRP_READLOG: root's
 * CAP_AUDIT_READ) and prints one line per seccomp kill (record type 1326): `k <uid> <nr> <arch>`.
 * Node has no netlink sockets, hence a small python3 (already a runtime of ours). The multicast group
 * gets every record the kernel queues, whether or not an audit daemon runs, and is not subject to
 * printk's rate limit, which the kernel log (/dev/kmsg) is: there, a flood of 10 kills in 5 s hides
 * the next one host-wide. A line `p <n>` on stdin is answered `p <n>` once every record already in
 * the socket has been printed: the barrier a run's end waits for.
 */
const READER = String.raw`
import os, re, select, socket, struct, sys
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 9)
try:
    s.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE: a burst must not overflow it
except OSError:
    pass
s.bind((0, 1))
s.setblocking(False)
out = sys.stdout.buffer
uid_re, nr_re, arch_re = re.compile(rb' uid=(\d+) '), re.compile(rb'\bsyscall=(\d+)'), re.compile(rb'\barch=([0-9a-f]+)')
def drain():
    while True:
        try:
            d = s.recv(65536)
        except BlockingIOError:
            return
        except OSError:  # ENOBUFS: records were lost
            out.write(b'x\n')
            continue
        if len(d) < 16 or struct.unpack_from('=H', d, 4)[0] != 1326:
            continue
        uid, nr, arch = uid_re.search(d), nr_re.search(d), arch_re.search(d)
        if uid and nr:
            out.write(b'k %s %s %s\n' % (uid.group(1), nr.group(1), arch.group(1) if arch else b'-'))
out.write(b'ready\n'); out.flush()
pending = b''
while True:
    r = select.select([s, 0], [], [])[0]
    drain()
    if 0 in r:
        data = os.read(0, 4096)
        if not data:
            break
        pending += data
        *lines, pending = pending.split(b'\n')
        for line in lines:
            out.write(line + b'\n')
    out.flush()
`;

/** A barrier the reader did not answer within this is given up on (the run is judged without it). */
const BARRIER_TIMEOUT_MS = 2000;

/**
 * Seccomp kills by host uid. Each live sandbox has a host uid of its own (UidLeases), so a kill
 * record for that uid between the watch's start and the run's end is that run's: the first process
 * or any child it forked. Limits: needs root (per-run uids and the audit group); a kernel without
 * audit support has no records (the first process's SIGSYS is still seen by the backend).
 */
class SeccompKillLog {
  private reader: ChildProcess | null = null;
  private ready: Promise<boolean> | null = null;
  private readonly kills = new Map<number, string[]>();
  private readonly barriers = new Map<number, () => void>();
  private seq = 0;
  /** Set when the reader could not start or records were lost; said in warnings. */
  problem: string | null = null;

  private users = 0;

  /** A backend that will watch uids; the reader runs (from the first watch) until the last releases. */
  retain(): void {
    this.users++;
  }

  async release(): Promise<void> {
    if (--this.users > 0 || !this.ready) return;
    const starting = this.ready;
    this.ready = null;
    if (!(await starting)) return;
    const reader = this.reader;
    if (!reader || reader.exitCode !== null) return;
    const gone = new Promise((resolve) => reader.once('exit', resolve));
    reader.ref(); // the exit must be heard
    reader.kill('SIGTERM');
    await gone;
  }

  /** The reader's pid while it runs (it outlives runs by design; leak checks skip it). */
  readerPid(): number | undefined {
    return this.reader?.pid;
  }

  /** Whether kills of forked children can be seen on this host (starts the reader). */
  available(): Promise<boolean> {
    this.ready ??= this.start();
    return this.ready;
  }

  /** Begin attributing kills of `uid`; earlier records (a previous holder of the uid) are skipped. */
  async watch(uid: number): Promise<void> {
    if (!(await this.available())) return;
    await this.barrier();
    this.kills.set(uid, []);
  }

  unwatch(uid: number): void {
    this.kills.delete(uid);
  }

  /**
   * Syscalls the processes of `uid` were killed for since its watch began. The kernel's audit
   * thread sends a record a moment after the kill (later on a busy machine), which the barrier
   * cannot see coming: when a kill is certain (the program died of SIGSYS), its record is waited for,
   * up to BARRIER_TIMEOUT_MS.
   */
  async of(uid: number, killCertain = false): Promise<string[]> {
    if (!this.kills.has(uid)) return [];
    await this.barrier();
    const until = Date.now() + BARRIER_TIMEOUT_MS;
    while (killCertain && this.kills.get(uid)?.length === 0 && this.reader && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      await this.barrier();
    }
    return [...(this.kills.get(uid) ?? [])];
  }

  private barrier(): Promise<void> {
    const reader = this.reader;
    if (!reader?.stdin?.writable) return Promise.resolve();
    const n = ++this.seq;
    return new Promise<void>((resolve) => {
      // Not unref'd: while a run waits for its barrier the process must stay up to hear the answer.
      const timer = setTimeout(done, BARRIER_TIMEOUT_MS);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.barriers.set(n, () => {
        this.barriers.delete(n);
        done();
      });
      reader.stdin!.write(`p ${n}\n`);
    });
  }

  private start(): Promise<boolean> {
    if (process.getuid?.() !== 0) {
      this.problem = 'Warden is not root';
      return Promise.resolve(false);
    }
    return new Promise<boolean>((resolve) => {
      const child = spawn('/usr/bin/python3', ['-I', '-S', '-c', READER], {
        stdio: ['pipe', 'pipe', 'pipe'],
        env: {},
      });
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-500)));
      child.stdin!.on('error', () => {});
      child.on('error', (err) => {
        this.problem = `audit reader: ${err.message}`;
        resolve(false);
      });
      child.on('exit', (_code, signal) => {
        if (signal !== 'SIGTERM')
          this.problem ??= `audit reader ended: ${stderr.trim().split('\n').pop() ?? ''}`;
        this.reader = null;
        // A later watch starts it again; barriers waiting on this one are released now.
        this.ready = null;
        for (const release of [...this.barriers.values()]) release();
        resolve(false);
      });
      // Once up, it lives as long as the service and must not keep it alive.
      const detach = () => {
        child.unref();
        for (const pipe of [child.stdin, child.stdout, child.stderr])
          (pipe as unknown as { unref?: () => void } | null)?.unref?.();
      };
      const lines = createInterface({ input: child.stdout! });
      lines.on('line', (line) => {
        const [kind, a, b, c] = line.split(' ');
        if (kind === 'ready') {
          detach();
          this.reader = child;
          this.problem = null;
          resolve(true);
        } else if (kind === 'p') this.barriers.get(Number(a))?.();
        else if (kind === 'k') {
          const list = this.kills.get(Number(a));
          list?.push(syscallName(Number(b), AUDIT_ARCH[c ?? '']) ?? `syscall ${b}`);
        } else if (kind === 'x') this.problem = 'the kernel dropped audit records (receive buffer full)';
      });
    });
  }
}

export const seccompKills = new SeccompKillLog();

/**
 * A run's violations: each system call the processes of its host uid (null: none leased) were killed
 * for (audit records), or, with none recorded, the program's own death by SIGSYS without the call's name.
 */
export async function forbiddenSyscalls(uid: number | null, decoded: DecodedExit): Promise<Violation[]> {
  const diedOfSigsys = decoded.kind === 'exited' && decoded.signal === 'SIGSYS';
  const kills = uid === null ? [] : await seccompKills.of(uid, diedOfSigsys);
  const found: Violation[] = [...new Set(kills)].map((syscall) => ({
    rule: 'forbidden_syscall',
    message: `a process of the run was stopped for calling a forbidden system call: ${syscall}`,
    syscall,
  }));
  if (found.length === 0 && diedOfSigsys) {
    found.push({
      rule: 'forbidden_syscall',
      message: 'the program was stopped for calling a forbidden system call',
    });
  }
  return found;
}
