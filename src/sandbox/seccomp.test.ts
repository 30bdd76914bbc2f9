import { spawn } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import type { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reportUnavailable, sandboxBackends, testEngine } from '../../test/sandbox/helpers.js';
import type { Engine } from './engine.js';
import {
  BPF,
  BpfProgram,
  buildSeccompFilter,
  CONDITIONALLY_KILLED_SYSCALLS,
  ENOSYS_SYSCALLS,
  KILLED_SYSCALLS,
  SECCOMP_KILL_EXIT,
  syscallName,
  type SeccompArch,
} from './seccomp.js';
import { AARCH64_SYSCALLS, X86_64_SYSCALLS } from './syscalls.js';
import type { BackendName } from './types.js';

const KILL = 0x80000000;
const ALLOW = 0x7fff0000;
const ERRNO = (e: number): number => 0x00050000 | e;
const AUDIT_ARCH: Record<SeccompArch, number> = { x86_64: 0xc000003e, aarch64: 0xc00000b7 };
const TABLES: Record<SeccompArch, Readonly<Record<string, number>>> = {
  x86_64: X86_64_SYSCALLS,
  aarch64: AARCH64_SYSCALLS,
};

/**
 * Runs a filter the way the kernel would on one seccomp_data, so both architectures' programs can be
 * checked syscall by syscall on any host. Only the opcodes the generator emits are understood; anything
 * else fails the test rather than being guessed at.
 */
function evaluate(filter: Buffer, nr: number, arch: number, args: bigint[] = []): number {
  const data = Buffer.alloc(64);
  data.writeUInt32LE(nr >>> 0, 0);
  data.writeUInt32LE(arch >>> 0, 4);
  args.forEach((a, i) => data.writeBigUInt64LE(a, 16 + 8 * i));
  let acc = 0;
  for (let pc = 0; pc * 8 < filter.length; pc++) {
    const code = filter.readUInt16LE(pc * 8);
    const jt = filter.readUInt8(pc * 8 + 2);
    const jf = filter.readUInt8(pc * 8 + 3);
    const k = filter.readUInt32LE(pc * 8 + 4);
    switch (code) {
      case BPF.LD_W_ABS:
        if (k % 4 !== 0 || k + 4 > data.length) throw new Error(`bad load offset ${k}`);
        acc = data.readUInt32LE(k);
        break;
      case BPF.JEQ_K:
        pc += acc === k ? jt : jf;
        break;
      case BPF.JGE_K:
        pc += acc >= k ? jt : jf;
        break;
      case BPF.JSET_K:
        pc += (acc & k) !== 0 ? jt : jf;
        break;
      case BPF.RET_K:
        return k;
      default:
        throw new Error(`unexpected opcode 0x${code.toString(16)} at ${pc}`);
    }
  }
  throw new Error('ran off the end of the program');
}

function hostArch(): SeccompArch {
  if (process.arch === 'x64') return 'x86_64';
  if (process.arch === 'arm64') return 'aarch64';
  throw new Error(`tests need an x86_64 or aarch64 host, not ${process.arch}`);
}

describe('syscall tables and names', () => {
  it('maps well-known numbers (checked against the kernel headers) to names and back', () => {
    expect(syscallName(101, 'x86_64')).toBe('ptrace');
    expect(syscallName(117, 'aarch64')).toBe('ptrace');
    expect(syscallName(999_999, 'x86_64')).toBeUndefined();
    const x86: Record<string, number> = {
      read: 0,
      clone: 56,
      socket: 41,
      mount: 165,
      unshare: 272,
      clone3: 435,
    };
    const arm: Record<string, number> = {
      openat: 56,
      clone: 220,
      socket: 198,
      mount: 40,
      unshare: 97,
      bpf: 280,
    };
    for (const [name, nr] of Object.entries(x86)) expect([name, X86_64_SYSCALLS[name]]).toEqual([name, nr]);
    for (const [name, nr] of Object.entries(arm)) expect([name, AARCH64_SYSCALLS[name]]).toEqual([name, nr]);
    // aarch64 never had these; a stray entry would mean the table came from the wrong header.
    for (const name of ['open', 'fork', 'iopl', 'modify_ldt']) expect(AARCH64_SYSCALLS[name]).toBeUndefined();
  });

  it('defaults to the host architecture', () => {
    expect(syscallName(TABLES[hostArch()].ptrace ?? -1)).toBe('ptrace');
  });

  it('has a number for every policy name on x86_64 and for all but x86-only ones on aarch64', () => {
    const policy = [
      ...KILLED_SYSCALLS,
      ...CONDITIONALLY_KILLED_SYSCALLS,
      ...ENOSYS_SYSCALLS,
      'socket',
      'ioctl',
    ];
    expect(policy.filter((name) => X86_64_SYSCALLS[name] === undefined)).toEqual([]);
    expect(policy.filter((name) => AARCH64_SYSCALLS[name] === undefined).sort()).toEqual(
      [
        '_sysctl',
        'create_module',
        'get_kernel_syms',
        'ioperm',
        'iopl',
        'modify_ldt',
        'query_module',
        'uselib',
      ].sort(),
    );
  });
});

describe('filter program', () => {
  it.each(['x86_64', 'aarch64'] as const)('%s: checks the arch first and kills on mismatch', (arch) => {
    const f = buildSeccompFilter({ allowNetwork: false, arch });
    expect(f.length % 8).toBe(0);
    const insn = (pc: number) => [
      f.readUInt16LE(pc * 8),
      f[pc * 8 + 2],
      f[pc * 8 + 3],
      f.readUInt32LE(pc * 8 + 4),
    ];
    expect(insn(0)).toEqual([BPF.LD_W_ABS, 0, 0, 4]);
    expect(insn(1)).toEqual([BPF.JEQ_K, 1, 0, AUDIT_ARCH[arch]]);
    expect(insn(2)).toEqual([BPF.RET_K, 0, 0, KILL]);
    expect(insn(3)).toEqual([BPF.LD_W_ABS, 0, 0, 0]);
    const other = arch === 'x86_64' ? AUDIT_ARCH.aarch64 : AUDIT_ARCH.x86_64;
    expect(evaluate(f, 0, other)).toBe(KILL);
    expect(evaluate(f, 0, 0x40000003 /* i386 */)).toBe(KILL);
  });

  it.each([
    ['x86_64', false],
    ['x86_64', true],
    ['aarch64', false],
    ['aarch64', true],
  ] as const)(
    '%s (network %s): every syscall in the table gets the intended action',
    (arch, allowNetwork) => {
      const f = buildSeccompFilter({ allowNetwork, arch });
      expect(f.length / 8).toBeLessThan(4096);
      const audit = AUDIT_ARCH[arch];
      for (const [name, nr] of Object.entries(TABLES[arch])) {
        let expected = ALLOW;
        if (KILLED_SYSCALLS.includes(name)) expected = KILL;
        if (ENOSYS_SYSCALLS.includes(name)) expected = ERRNO(38);
        // Benign arguments: fork-style clone, PER_LINUX, AF_UNIX, TCGETS.
        const args =
          { clone: [0x11n], personality: [0n], socket: [1n, 1n], ioctl: [0n, 0x5401n] }[name] ?? [];
        expect([name, evaluate(f, nr, audit, args)]).toEqual([name, expected]);
      }
    },
  );

  it('kills x32 syscalls on x86_64', () => {
    const f = buildSeccompFilter({ allowNetwork: true, arch: 'x86_64' });
    expect(evaluate(f, 0x40000000 + 39, AUDIT_ARCH.x86_64)).toBe(KILL);
    expect(evaluate(f, 0xffffffff, AUDIT_ARCH.x86_64)).toBe(KILL);
    expect(evaluate(f, 39, AUDIT_ARCH.x86_64)).toBe(ALLOW);
  });

  it.each(['x86_64', 'aarch64'] as const)('%s: argument checks', (arch) => {
    const nr = (name: string): number => TABLES[arch][name] ?? -1;
    const audit = AUDIT_ARCH[arch];
    const closed = buildSeccompFilter({ allowNetwork: false, arch });
    const open = buildSeccompFilter({ allowNetwork: true, arch });
    const run = (f: Buffer, name: string, ...args: bigint[]) => evaluate(f, nr(name), audit, args);

    // glibc's pthread_create flags (CLONE_VM|FS|FILES|SIGHAND|THREAD|SYSVSEM|SETTLS|PARENT_SETTID|CHILD_CLEARTID).
    expect(run(closed, 'clone', 0x3d0f00n)).toBe(ALLOW);
    for (const flag of [
      0x20000n,
      0x2000000n,
      0x4000000n,
      0x8000000n,
      0x10000000n,
      0x20000000n,
      0x40000000n,
      0x80n,
    ]) {
      expect([flag, run(closed, 'clone', flag | 0x11n)]).toEqual([flag, KILL]);
    }

    expect(run(closed, 'personality', 0xffffffffn)).toBe(ALLOW);
    expect(run(closed, 'personality', 0x0040000n /* ADDR_NO_RANDOMIZE */)).toBe(KILL);

    expect(run(closed, 'socket', 1n)).toBe(ALLOW);
    expect(run(closed, 'socket', 2n)).toBe(ERRNO(97));
    expect(run(closed, 'socket', 10n)).toBe(ERRNO(97));
    // The kernel reads `int domain`, so junk in the high word must not change the verdict either way.
    expect(run(closed, 'socket', 0x1_00000002n)).toBe(ERRNO(97));
    expect(run(closed, 'socket', 0x1_00000001n)).toBe(ALLOW);
    expect(run(open, 'socket', 2n)).toBe(ALLOW);
    expect(run(open, 'socket', 10n)).toBe(ALLOW);
    expect(run(open, 'socket', 16n /* AF_NETLINK */)).toBe(ERRNO(97));
    expect(run(open, 'socket', 17n /* AF_PACKET */)).toBe(ERRNO(97));

    expect(run(closed, 'ioctl', 0n, 0x5412n /* TIOCSTI */)).toBe(ERRNO(1));
    expect(run(closed, 'ioctl', 0n, 0x541cn /* TIOCLINUX */)).toBe(ERRNO(1));
  });

  it('refuses jumps that do not fit in a u8, undefined labels and programs without a final return', () => {
    const far = new BpfProgram().jump(BPF.JEQ_K, 1, 'end', 'end');
    for (let i = 0; i < 256; i++) far.ret(0);
    far.label('end').ret(0);
    expect(() => far.assemble()).toThrow(/u8/);

    const near = new BpfProgram().jump(BPF.JEQ_K, 1, 'end', 'end');
    for (let i = 0; i < 255; i++) near.ret(0);
    expect(near.label('end').ret(0).assemble().readUInt8(2)).toBe(255);

    expect(() => new BpfProgram().jump(BPF.JEQ_K, 1, 'nowhere', 'nowhere').ret(0).assemble()).toThrow(
      /not defined/,
    );
    expect(() => new BpfProgram().load(0).assemble()).toThrow(/return/);
  });
});

interface SandboxResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

const { available: BACKENDS, unavailable } = await sandboxBackends();
reportUnavailable('the seccomp tests', unavailable, it);

let engine: Engine;
beforeAll(() => {
  engine = testEngine();
});
afterAll(async () => {
  await engine.shutdown();
});

/**
 * argv in a sandbox of `backend` through the engine (the filter of production), without network;
 * `internet`: a private network namespace in which internet sockets are allowed (as for jobs' bridge).
 * A program killed by signal N reports 128 + N, as bwrap does.
 */
async function sandboxed(backend: BackendName, internet: boolean, argv: string[]): Promise<SandboxResult> {
  const r = await engine.run(
    { argv, network: { enabled: false, loopback: internet }, limits: { wallTimeMs: 8_000 } },
    { backend },
  );
  if (r.status === 'error') throw new Error(r.error);
  const code = r.signal ? 128 + (osConstants.signals[r.signal as NodeJS.Signals] ?? 0) : r.exitCode;
  return { code, stdout: r.stdout, stderr: r.stderr };
}

/** The same command on the host with no filter, to tell a missing kernel feature from the filter. */
function plain(argv: string[]): Promise<SandboxResult> {
  return run(argv, Buffer.alloc(0));
}

function run([file, ...args]: string[], filter: Buffer): Promise<SandboxResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      file ?? '',
      args,
      // A fixed environment keeps host settings (NODE_OPTIONS, NODE_EXTRA_CA_CERTS, ...) out of the output.
      { stdio: ['ignore', 'pipe', 'pipe', 'pipe'], env: { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8' } },
    );
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const filterPipe = child.stdio[3] as Writable;
    // If bwrap dies before reading, the write fails with EPIPE; the exit code tells the real story.
    filterPipe.on('error', () => {});
    filterPipe.end(filter);
    const timer = setTimeout(() => child.kill('SIGKILL'), 8_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const python = (code: string): string[] => ['/usr/bin/python3', '-c', code];
const NR = (name: string): number => {
  const nr = TABLES[hostArch()][name];
  if (nr === undefined) throw new Error(`no syscall ${name} on this host`);
  return nr;
};

/** Calls a raw syscall from Python; reaching the print means the filter let it through. */
const rawSyscall = (nr: number, ...args: string[]): string[] =>
  python(
    `import ctypes\nr = ctypes.CDLL(None, use_errno=True).syscall(${[nr, ...args].join(', ')})\n` +
      `print("survived", r, ctypes.get_errno())`,
  );

describe.concurrent.each(BACKENDS)('under %s', (backend) => {
  // gVisor's OCI seccomp (2022) answers every refused call with EPERM, whatever errno the rule names.
  const refused = backend === 'gvisor' ? '1' : '97';
  it('runs an ordinary Python program: startup, a thread, fork and a subprocess', async () => {
    const r = await sandboxed(
      backend,
      false,
      python(
        [
          'import json, os, re, subprocess, threading',
          'out = []',
          't = threading.Thread(target=lambda: out.append(json.dumps({"a": 1})))',
          't.start(); t.join()',
          'pid = os.fork()',
          'if pid == 0: os._exit(7)',
          '_, status = os.waitpid(pid, 0)',
          'rc = subprocess.run(["/bin/true"]).returncode',
          'seccomp = re.search(r"Seccomp:\\s*(\\d)", open("/proc/self/status").read()).group(1)',
          'print(out[0], os.waitstatus_to_exitcode(status), rc, seccomp)',
        ].join('\n'),
      ),
    );
    // Seccomp mode 2 proves the filter was really installed, so the other tests are not passing vacuously.
    expect(r).toEqual({ code: 0, stdout: '{"a": 1} 7 0 2\n', stderr: '' });
  });

  it('kills ptrace with SIGSYS', async () => {
    const r = await sandboxed(backend, false, rawSyscall(NR('ptrace'), '0', '0', '0', '0'));
    expect(r.code).toBe(SECCOMP_KILL_EXIT);
    expect(r.stdout).toBe('');
  });

  it('kills unshare(CLONE_NEWUSER)', async () => {
    const r = await sandboxed(backend, false, rawSyscall(NR('unshare'), '0x10000000'));
    expect(r.code).toBe(SECCOMP_KILL_EXIT);
    expect(r.stdout).toBe('');
  });

  it('kills mount', async () => {
    const r = await sandboxed(
      backend,
      false,
      rawSyscall(NR('mount'), 'b"none"', 'b"/tmp"', 'b"tmpfs"', '0', '0'),
    );
    expect(r.code).toBe(SECCOMP_KILL_EXIT);
    expect(r.stdout).toBe('');
  });

  it('kills clone with CLONE_NEWUSER', async () => {
    const r = await sandboxed(backend, false, rawSyscall(NR('clone'), '0x10000000', '0', '0', '0', '0'));
    expect(r.code).toBe(SECCOMP_KILL_EXIT);
    expect(r.stdout).toBe('');
  });

  it.runIf(hostArch() === 'x86_64')('kills x32 syscalls (gVisor: has no x32 ABI at all)', async () => {
    const r = await sandboxed(backend, false, rawSyscall(0x40000000 + NR('getpid')));
    if (backend === 'gvisor')
      expect(r.stdout).toBe('survived -1 38\n'); // ENOSYS, nothing ran
    else expect(r.code).toBe(SECCOMP_KILL_EXIT);
  });

  // The one foreign ABI reachable from an x86_64 process: i386 syscalls via int 0x80. Number 20 is getpid
  // there but writev on x86_64, so only the arch check stands between it and an allowed syscall.
  const i386Getpid = python(
    [
      'import ctypes, mmap, os',
      'code = bytes([0xB8, 20, 0, 0, 0, 0xCD, 0x80, 0xC3])  # mov eax, 20; int 0x80; ret',
      'buf = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)',
      'buf.write(code)',
      'fn = ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(buf)))',
      'print("survived", fn() == os.getpid())',
    ].join('\n'),
  );

  it.runIf(hostArch() === 'x86_64')('kills i386 syscalls made with int 0x80 (wrong arch)', async (ctx) => {
    const [unfiltered, filtered] = await Promise.all([
      plain(i386Getpid),
      sandboxed(backend, false, i386Getpid),
    ]);
    // Kernels built or booted without IA32 emulation fault on int 0x80 before seccomp sees anything.
    if (unfiltered.stdout !== 'survived True\n') ctx.skip();
    if (backend === 'gvisor') {
      // gVisor has no i386 ABI: int 0x80 enters its one (x86_64) syscall table, filtered like any
      // call, so number 20 is writev there and no foreign numbering can slip past the policy.
      expect(filtered.stdout).toMatch(/^survived False/);
      return;
    }
    expect(filtered.code).toBe(SECCOMP_KILL_EXIT);
    expect(filtered.stdout).toBe('');
  });

  const socketProbe = python(
    [
      'import socket',
      'def probe(family, kind):',
      '    try:',
      '        socket.socket(family, kind).close()',
      '        return "ok"',
      '    except OSError as e:',
      '        return str(e.errno)',
      'a, b = socket.socketpair()',
      'a.sendall(b"ping")',
      'print(b.recv(4).decode(), probe(socket.AF_INET, socket.SOCK_STREAM),',
      '      probe(socket.AF_INET6, socket.SOCK_DGRAM), probe(socket.AF_NETLINK, socket.SOCK_RAW))',
    ].join('\n'),
  );

  it('without network: AF_UNIX works, other families fail with EAFNOSUPPORT', async () => {
    const r = await sandboxed(backend, false, socketProbe);
    expect(r).toEqual({ code: 0, stdout: `ping ${refused} ${refused} ${refused}\n`, stderr: '' });
  });

  it('with network: AF_INET and AF_INET6 can be created, netlink still cannot', async () => {
    const r = await sandboxed(backend, true, socketProbe);
    expect(r).toEqual({ code: 0, stdout: `ping ok ok ${refused}\n`, stderr: '' });
  });

  it('runs node, including its thread pool', async () => {
    const script =
      "require('fs').readFile('/proc/self/status', 'utf8', (err, s) => {" +
      ' if (err) throw err; console.log(1, /Seccomp:\\s*(\\d)/.exec(s)[1]); })';
    const r = await sandboxed(backend, false, ['/usr/bin/node', '-e', script]);
    expect(r).toEqual({ code: 0, stdout: '1 2\n', stderr: '' });
  });
});
