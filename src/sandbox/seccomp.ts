/**
 * Classic-BPF seccomp filter for bubblewrap's `--seccomp FD`, generated in TypeScript so the engine needs
 * neither native code nor libseccomp. bwrap reads the raw `struct sock_filter` array from the fd and
 * installs it right before it execs the sandboxed command, so bwrap's own set-up (mounts, pivot_root,
 * namespaces) is not subject to it.
 *
 * Policy: syscalls that only serve to escape, weaken or observe the sandbox kill the whole process (so the
 * run shows up as a security violation instead of a quiet EPERM the code could probe around); the
 * few that runtimes probe at start-up and can live without return ENOSYS; everything else is allowed.
 */
import { AARCH64_SYSCALLS, X86_64_SYSCALLS } from './syscalls.js';

export type SeccompArch = 'x86_64' | 'aarch64';

export interface SeccompOptions {
  /** false: only AF_UNIX sockets can be created; true: AF_UNIX, AF_INET and AF_INET6. */
  allowNetwork: boolean;
  /** Defaults to the architecture this process runs on. */
  arch?: SeccompArch;
}

/** 128 + SIGSYS: bwrap's exit status when the sandboxed command was killed by the filter. */
export const SECCOMP_KILL_EXIT = 159;

/**
 * Killed whenever called. Names missing from an architecture's table (x86-only ones on aarch64) are
 * simply not emitted for it.
 */
export const KILLED_SYSCALLS: readonly string[] = [
  // Inspecting or tampering with other processes.
  'ptrace',
  'process_vm_readv',
  'process_vm_writev',
  'kcmp',
  'pidfd_getfd',
  // Changing the filesystem view or namespaces the sandbox was built from.
  'mount',
  'umount2',
  'pivot_root',
  'chroot',
  'unshare',
  'setns',
  'fsopen',
  'fsmount',
  'fsconfig',
  'fspick',
  'move_mount',
  'open_tree',
  'open_tree_attr',
  'mount_setattr',
  // Bypassing path-based access: a file handle opens any inode on the filesystem.
  'open_by_handle_at',
  'name_to_handle_at',
  // Large kernel attack surface with no use in a sandboxed run.
  'bpf',
  'perf_event_open',
  'userfaultfd',
  'keyctl',
  'add_key',
  'request_key',
  'lookup_dcookie',
  'lsm_set_self_attr',
  'modify_ldt',
  'uselib',
  // Host administration: modules, kexec, power, swap, accounting, quotas, clocks, names, kernel log.
  'init_module',
  'finit_module',
  'delete_module',
  'create_module',
  'get_kernel_syms',
  'query_module',
  'kexec_load',
  'kexec_file_load',
  'reboot',
  'swapon',
  'swapoff',
  'acct',
  'quotactl',
  'quotactl_fd',
  'nfsservctl',
  '_sysctl',
  'syslog',
  'settimeofday',
  'clock_settime',
  'clock_adjtime',
  'adjtimex',
  'sethostname',
  'setdomainname',
  // Direct hardware port access.
  'iopl',
  'ioperm',
];

/** Killed only for some arguments: clone with a namespace flag, personality with an unusual persona. */
export const CONDITIONALLY_KILLED_SYSCALLS: readonly string[] = ['clone', 'personality'];

/**
 * Fail with ENOSYS. clone3 passes its flags in memory the filter cannot read, so it cannot be checked
 * like clone; glibc and runtimes fall back to clone on ENOSYS. io_uring would let the code create
 * sockets and do I/O without the syscalls this filter inspects; libuv and others fall back too.
 */
export const ENOSYS_SYSCALLS: readonly string[] = [
  'clone3',
  'io_uring_setup',
  'io_uring_enter',
  'io_uring_register',
];

// seccomp return actions (the low 16 bits of ERRNO carry the errno).
const RET_KILL_PROCESS = 0x80000000;
const RET_ERRNO = 0x00050000;
const RET_ALLOW = 0x7fff0000;

export const ENOSYS = 38;
export const EAFNOSUPPORT = 97;
export const EPERM = 1;

// struct seccomp_data; both supported ABIs are little-endian, so an argument's low word comes first.
const OFF_NR = 0;
const OFF_ARCH = 4;
const argLow = (i: number): number => 16 + 8 * i;

const AF_UNIX = 1;
const AF_INET = 2;
const AF_INET6 = 10;

/** Socket domains a run may create (others fail with EAFNOSUPPORT). */
export function socketDomains(allowNetwork: boolean): number[] {
  return allowNetwork ? [AF_UNIX, AF_INET, AF_INET6] : [AF_UNIX];
}

// clone() reads the low byte (CSIGNAL), where CLONE_NEWTIME (0x80) lives, as the exit signal, so it cannot
// create a time namespace; no valid signal has that bit, so masking it anyway cannot kill a legitimate clone.
export const CLONE_NAMESPACE_FLAGS =
  0x00020000 | // CLONE_NEWNS
  0x02000000 | // CLONE_NEWCGROUP
  0x04000000 | // CLONE_NEWUTS
  0x08000000 | // CLONE_NEWIPC
  0x10000000 | // CLONE_NEWUSER
  0x20000000 | // CLONE_NEWPID
  0x40000000 | // CLONE_NEWNET
  0x00000080; // CLONE_NEWTIME

// PER_LINUX, PER_LINUX32, UNAME26 and their combination, plus 0xffffffff (query): the personas Docker's
// default profile allows. Anything else (ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC, ...) weakens exploit
// mitigations for whatever the process execs next.
export const ALLOWED_PERSONAS = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];

// Both push input into the controlling terminal's queue, i.e. run commands outside the sandbox if the
// run ever shares a tty with a shell (bwrap's documentation recommends filtering TIOCSTI).
export const TIOCSTI = 0x5412;
export const TIOCLINUX = 0x541c;

// x32 syscalls arrive with arch == AUDIT_ARCH_X86_64 but this bit set in nr; they would otherwise dodge the
// x86_64 numbers matched below.
const X32_SYSCALL_BIT = 0x40000000;

interface ArchInfo {
  auditArch: number;
  table: Readonly<Record<string, number>>;
  hasX32: boolean;
}

const ARCHES: Record<SeccompArch, ArchInfo> = {
  x86_64: { auditArch: 0xc000003e, table: X86_64_SYSCALLS, hasX32: true },
  aarch64: { auditArch: 0xc00000b7, table: AARCH64_SYSCALLS, hasX32: false },
};

export function hostArch(): SeccompArch | undefined {
  if (process.arch === 'x64') return 'x86_64';
  if (process.arch === 'arm64') return 'aarch64';
  return undefined;
}

// Classic BPF opcodes, only those the filter uses.
export const BPF = {
  LD_W_ABS: 0x20,
  JEQ_K: 0x15,
  JGE_K: 0x35,
  JSET_K: 0x45,
  RET_K: 0x06,
} as const;

const BPF_MAXINSNS = 4096;

const NEXT = Symbol('next');
/** A jump target: a label, or NEXT to fall through to the following instruction. */
type Target = string | typeof NEXT;

interface PendingInsn {
  code: number;
  k: number;
  jt: Target;
  jf: Target;
}

/**
 * Tiny assembler with labelled forward jumps. Classic BPF jump offsets are u8 and forward-only, so every
 * target is resolved at the end and checked instead of trusting the program's layout.
 */
export class BpfProgram {
  private readonly insns: PendingInsn[] = [];
  private readonly labels = new Map<string, number>();
  private nextAnon = 0;

  load(offset: number): this {
    return this.push(BPF.LD_W_ABS, offset, NEXT, NEXT);
  }

  ret(action: number): this {
    return this.push(BPF.RET_K, action, NEXT, NEXT);
  }

  jump(code: number, k: number, jt: Target, jf: Target): this {
    return this.push(code, k, jt, jf);
  }

  /** `if (A <op> k) return action;` — keeps every jump one instruction long. */
  retIf(code: number, k: number, action: number): this {
    const skip = this.anonLabel();
    return this.jump(code, k, NEXT, skip).ret(action).label(skip);
  }

  label(name: string): this {
    if (this.labels.has(name)) throw new Error(`BPF label ${name} defined twice`);
    this.labels.set(name, this.insns.length);
    return this;
  }

  anonLabel(): string {
    return `.L${this.nextAnon++}`;
  }

  assemble(): Buffer {
    const n = this.insns.length;
    if (n === 0 || n > BPF_MAXINSNS)
      throw new Error(`BPF program has ${n} instructions (1..${BPF_MAXINSNS})`);
    const last = this.insns[n - 1];
    // The kernel rejects a program that can run off its end.
    if (last?.code !== BPF.RET_K) throw new Error('BPF program must end with a return');
    const out = Buffer.alloc(n * 8);
    this.insns.forEach((insn, pc) => {
      out.writeUInt16LE(insn.code, pc * 8);
      out.writeUInt8(this.offset(pc, insn.jt), pc * 8 + 2);
      out.writeUInt8(this.offset(pc, insn.jf), pc * 8 + 3);
      out.writeUInt32LE(insn.k >>> 0, pc * 8 + 4);
    });
    return out;
  }

  private push(code: number, k: number, jt: Target, jf: Target): this {
    if (!Number.isInteger(k) || k < 0 || k > 0xffffffff) throw new Error(`BPF constant out of range: ${k}`);
    this.insns.push({ code, k, jt, jf });
    return this;
  }

  private offset(pc: number, target: Target): number {
    if (target === NEXT) return 0;
    const at = this.labels.get(target);
    if (at === undefined) throw new Error(`BPF label ${target} is not defined`);
    if (at >= this.insns.length) throw new Error(`BPF label ${target} points past the last instruction`);
    const off = at - (pc + 1);
    if (off < 0 || off > 255)
      throw new Error(`BPF jump from ${pc} to ${target} (${off}) does not fit in a u8`);
    return off;
  }
}

const errno = (e: number): number => RET_ERRNO | (e & 0xffff);

/** The raw `struct sock_filter` array for `bwrap --seccomp FD`. */
export function buildSeccompFilter(options: SeccompOptions): Buffer {
  const archName = options.arch ?? hostArch();
  if (archName === undefined) throw new Error(`no seccomp filter for architecture ${process.arch}`);
  const arch = ARCHES[archName];
  if (arch === undefined) throw new Error(`no seccomp filter for architecture ${String(archName)}`);
  const nr = (name: string): number | undefined => arch.table[name];
  const p = new BpfProgram();

  // Syscall numbers only mean something for one ABI; anything else (i386 via int 0x80, aarch32) is foreign.
  p.load(OFF_ARCH).jump(BPF.JEQ_K, arch.auditArch, 'archOk', NEXT).ret(RET_KILL_PROCESS).label('archOk');

  p.load(OFF_NR);
  if (arch.hasX32) p.retIf(BPF.JGE_K, X32_SYSCALL_BIT, RET_KILL_PROCESS);

  // A linear list: each check is one jeq whose miss costs a single instruction, and no jump exceeds 1.
  for (const name of KILLED_SYSCALLS) {
    const n = nr(name);
    if (n !== undefined) p.retIf(BPF.JEQ_K, n, RET_KILL_PROCESS);
  }
  for (const name of ENOSYS_SYSCALLS) {
    const n = nr(name);
    if (n !== undefined) p.retIf(BPF.JEQ_K, n, errno(ENOSYS));
  }

  // Argument checks load an argument over the syscall number, so each block must end in a return. All
  // compare the low 32 bits only: the kernel truncates these arguments to 32 bits itself (int domain,
  // unsigned int cmd/persona, lower_32_bits(clone_flags)), so high bits cannot smuggle anything past.
  const argBlock = (name: string, emit: () => void): void => {
    const n = nr(name);
    if (n === undefined) return;
    const skip = p.anonLabel();
    p.jump(BPF.JEQ_K, n, NEXT, skip);
    emit();
    p.label(skip);
  };

  argBlock('clone', () => {
    p.load(argLow(0)).retIf(BPF.JSET_K, CLONE_NAMESPACE_FLAGS, RET_KILL_PROCESS).ret(RET_ALLOW);
  });

  argBlock('personality', () => {
    p.load(argLow(0));
    for (const persona of ALLOWED_PERSONAS) p.retIf(BPF.JEQ_K, persona, RET_ALLOW);
    p.ret(RET_KILL_PROCESS);
  });

  argBlock('socket', () => {
    p.load(argLow(0));
    for (const domain of socketDomains(options.allowNetwork)) p.retIf(BPF.JEQ_K, domain, RET_ALLOW);
    // EAFNOSUPPORT rather than a kill: runtimes probe for IPv6/netlink and cope with it being absent.
    p.ret(errno(EAFNOSUPPORT));
  });

  argBlock('ioctl', () => {
    p.load(argLow(1));
    p.retIf(BPF.JEQ_K, TIOCSTI, errno(EPERM));
    p.retIf(BPF.JEQ_K, TIOCLINUX, errno(EPERM));
    p.ret(RET_ALLOW);
  });

  p.ret(RET_ALLOW);
  return p.assemble();
}

const reverseTables = new Map<SeccompArch, Map<number, string>>();

/** The name of syscall `nr`, e.g. to report which call got a run killed. */
export function syscallName(nr: number, arch: SeccompArch | undefined = hostArch()): string | undefined {
  if (arch === undefined) return undefined;
  let byNumber = reverseTables.get(arch);
  if (byNumber === undefined) {
    byNumber = new Map(Object.entries(ARCHES[arch].table).map(([name, n]) => [n, name]));
    reverseTables.set(arch, byNumber);
  }
  return byNumber.get(nr);
}
