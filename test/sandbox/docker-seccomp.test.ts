import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dockerSeccompProfile } from '../../src/sandbox/backends/docker-seccomp.js';
import type { Engine } from '../../src/sandbox/engine.js';
import { ALLOWED_PERSONAS, ENOSYS_SYSCALLS, KILLED_SYSCALLS, hostArch } from '../../src/sandbox/seccomp.js';
import { X86_64_SYSCALLS } from '../../src/sandbox/syscalls.js';
import type { RunResult } from '../../src/sandbox/types.js';
import { testEngine } from './helpers.js';

/**
 * The docker backend's seccomp profile: generated from the bwrap filter's policy (one list), and
 * enforced for real in containers, including the 64-bit argument tricks a 32-bit check would miss.
 */
describe('the Docker profile comes from the seccomp policy', () => {
  const profile = dockerSeccompProfile(false, 'x86_64');
  const rules = (name: string) => profile.syscalls.filter((r) => r.names.includes(name));

  it('kills what the policy kills and fails with ENOSYS what it refuses, allowing the rest', () => {
    expect(profile.defaultAction).toBe('SCMP_ACT_ALLOW');
    const killed = profile.syscalls.find((r) => r.action === 'SCMP_ACT_KILL_PROCESS' && !r.args)!.names;
    expect(killed).toEqual(KILLED_SYSCALLS.filter((n) => X86_64_SYSCALLS[n] !== undefined));
    expect(profile.syscalls.find((r) => r.errnoRet === 38)?.names).toEqual([...ENOSYS_SYSCALLS]);
  });

  /** Whether a rule matches argument 0 = v, as libseccomp evaluates it. */
  const matches = (r: (typeof profile.syscalls)[number], v: bigint) =>
    (r.args ?? []).every((a) =>
      a.op === 'SCMP_CMP_GE'
        ? v >= BigInt(a.value)
        : a.op === 'SCMP_CMP_LE'
          ? v <= BigInt(a.value)
          : (v & BigInt(a.value)) === BigInt(a.valueTwo ?? 0),
    );

  it('has at most one comparison per argument in a rule (libseccomp keeps only one)', () => {
    for (const r of dockerSeccompProfile(true, 'x86_64').syscalls) {
      const indexes = (r.args ?? []).map((a) => a.index);
      expect(new Set(indexes).size).toBe(indexes.length);
    }
  });

  it('kills every persona but the allowed ones, over all 64 bits', () => {
    const covered = (v: bigint) => rules('personality').some((r) => matches(r, v));
    for (const persona of ALLOWED_PERSONAS) {
      expect(covered(BigInt(persona))).toBe(false);
      if (persona > 0) expect(covered(BigInt(persona) - 1n)).toBe(true);
      expect(covered(BigInt(persona) + 1n)).toBe(true);
      expect(covered(BigInt(persona) + 2n ** 32n)).toBe(true);
    }
    expect(covered(0x0040000n)).toBe(true); // ADDR_NO_RANDOMIZE
  });

  it('refuses every socket domain but AF_UNIX (and AF_INET, AF_INET6 with network)', () => {
    const open = dockerSeccompProfile(true, 'x86_64').syscalls.filter((r) => r.names.includes('socket'));
    for (let domain = 0n; domain < 64n; domain++) {
      expect(rules('socket').some((r) => matches(r, domain))).toBe(domain !== 1n);
      expect(open.some((r) => matches(r, domain))).toBe(![1n, 2n, 10n].includes(domain));
    }
    expect(open.some((r) => matches(r, 2n ** 32n + 2n))).toBe(true);
  });
});

const docker = new Docker({ socketPath: '/var/run/docker.sock' });
const available =
  process.getuid?.() === 0 &&
  hostArch() === 'x86_64' &&
  (await docker.ping().then(
    () => true,
    () => false,
  ));

describe.runIf(available)('in a docker container', () => {
  let engine: Engine;
  beforeAll(() => {
    engine = testEngine({ backend: 'docker' });
  });
  afterAll(() => engine?.shutdown());

  const python = (code: string, network?: { enabled: boolean; loopback?: boolean }): Promise<RunResult> =>
    engine.run({ argv: ['/usr/bin/python3', '-c', code], ...(network ? { network } : {}) });
  /** A raw syscall; reaching the print means the profile let it through. */
  const raw = (nr: number, ...args: string[]) =>
    python(
      'import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nlibc.syscall.restype = ctypes.c_long\n' +
        `r = libc.syscall(${[nr, ...args].map((a) => `ctypes.c_long(${a})`).join(', ')})\n` +
        'print("survived", r, ctypes.get_errno())',
    );

  it.concurrent.each([
    ['clone with CLONE_NEWUSER', 'clone', ['0x10000000 | 17', '0', '0', '0', '0']],
    ['personality(ADDR_NO_RANDOMIZE)', 'personality', ['0x0040000']],
    ['personality with a high bit over an allowed persona', 'personality', ['(1 << 32) | 8']],
    ['mount', 'mount', ['0', '0', '0', '0', '0']],
  ])('kills %s and names it', async (_what, name, args) => {
    const r = await raw(X86_64_SYSCALLS[name]!, ...(args as string[]));
    expect(r.stdout).toBe('');
    expect(r.status).toBe('security_violation');
    expect(r.violations[0]?.syscall).toBe(name);
  });

  it('allows the personas runtimes use (the query, PER_LINUX32)', async () => {
    const r = await python(
      'import ctypes\nlibc = ctypes.CDLL(None)\nlibc.personality.argtypes = [ctypes.c_ulong]\nprint(libc.personality(0xffffffff) >= 0, libc.personality(8) >= 0, libc.personality(0) >= 0)',
    );
    expect(r).toMatchObject({ status: 'success', stdout: 'True True True\n' });
  });

  it('kills x32 and i386 (int 0x80) system calls', async () => {
    const x32 = await raw(0x40000000 + X86_64_SYSCALLS.getpid!);
    expect(x32.status).toBe('security_violation');
    const i386 = await python(
      [
        'import ctypes, mmap, os',
        'code = bytes([0xB8, 20, 0, 0, 0, 0xCD, 0x80, 0xC3])  # mov eax, 20; int 0x80; ret',
        'buf = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)',
        'buf.write(code)',
        'fn = ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(buf)))',
        'print("survived", fn() == os.getpid())',
      ].join('\n'),
    );
    expect(i386.stdout).toBe('');
    expect(i386.signal).toBe('SIGSYS');
  });

  it("refuses TIOCSTI even with high bits set in the request (EPERM, not the kernel's ENOTTY)", async () => {
    const tiocsti = await raw(X86_64_SYSCALLS.ioctl!, '0', '(1 << 32) | 0x5412', '0');
    expect(tiocsti.stdout).toBe('survived -1 1\n');
    const other = await raw(X86_64_SYSCALLS.ioctl!, '0', '0x5401', '0'); // TCGETS: the kernel answers
    expect(other.stdout).toBe('survived -1 25\n');
  });

  const families =
    'import socket\ndef probe(f, k):\n    try:\n        socket.socket(f, k).close()\n        return "ok"\n' +
    '    except OSError as e:\n        return str(e.errno)\n' +
    'print(probe(socket.AF_UNIX, socket.SOCK_STREAM), probe(socket.AF_INET, socket.SOCK_STREAM), ' +
    'probe(socket.AF_INET6, socket.SOCK_DGRAM), probe(socket.AF_NETLINK, socket.SOCK_RAW))';

  it('without network only AF_UNIX sockets; in a loopback namespace internet sockets too, never netlink', async () => {
    expect((await python(families)).stdout).toBe('ok 97 97 97\n');
    expect((await python(families, { enabled: false, loopback: true })).stdout).toBe('ok ok ok 97\n');
  });

  it('refuses AF_INET with a high bit set (the kernel would read it as AF_INET)', async () => {
    const r = await raw(X86_64_SYSCALLS.socket!, '(1 << 32) | 2', '1', '0');
    expect(r.stdout).toBe('survived -1 97\n');
  });

  it('runs node under the filter (Seccomp: 2), its thread pool included', async () => {
    const r = await engine.run({
      argv: [
        '/usr/bin/node',
        '-e',
        "require('fs').readFile('/proc/self/status', 'utf8', (e, s) => { if (e) throw e; console.log(1, /Seccomp:\\s*(\\d)/.exec(s)[1]); })",
      ],
    });
    expect(r).toMatchObject({ status: 'success', stdout: '1 2\n' });
  });
});

const runscRegistered =
  available &&
  (await docker.info().then(
    (info: { Runtimes?: Record<string, unknown> }) => 'runsc' in (info.Runtimes ?? {}),
    () => false,
  ));

describe.runIf(runscRegistered)('in a docker container under the runsc runtime (Docker + gVisor)', () => {
  let engine: Engine;
  beforeAll(() => {
    engine = testEngine({ backend: 'docker', docker: { runtime: 'runsc' } });
  });
  afterAll(() => engine?.shutdown());

  it("runs Python and node (threads: clone3 is gVisor's own ENOSYS, not our EPERM)", async () => {
    const py = await engine.run({
      argv: [
        '/usr/bin/python3',
        '-c',
        'import threading, os\nt = threading.Thread(target=print, args=(os.uname().sysname,))\nt.start(); t.join()',
      ],
    });
    expect(py).toMatchObject({ status: 'success', stdout: 'Linux\n', isolation: 'container' });
    const js = await engine.run({ argv: ['/usr/bin/node', '-e', 'console.log(6 * 7)'] });
    expect(js).toMatchObject({ status: 'success', stdout: '42\n' });
  });

  it('kills a forbidden system call inside gVisor (the profile is applied by its sentry)', async () => {
    const r = await engine.run({
      argv: [
        '/usr/bin/python3',
        '-c',
        'import ctypes\nprint("before", flush=True)\nctypes.CDLL(None).syscall(101, 0, 0, 0, 0)\nprint("after")',
      ],
    });
    expect(r).toMatchObject({ status: 'security_violation', signal: 'SIGSYS', stdout: 'before\n' });
  });
});
