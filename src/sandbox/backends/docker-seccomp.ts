/**
 * The seccomp policy of src/sandbox/seccomp.ts (the bwrap filter's) as a Docker seccomp profile, so
 * both backends enforce one list. Docker compiles it with libseccomp, which compares whole 64-bit
 * arguments: where the kernel reads only the low 32 bits (socket's domain, personality's persona,
 * ioctl's request) the rules either mask the high half or refuse every other 64-bit value, so no
 * high bit can smuggle a refused value past them.
 */
import {
  ALLOWED_PERSONAS,
  CLONE_NAMESPACE_FLAGS,
  EAFNOSUPPORT,
  ENOSYS,
  ENOSYS_SYSCALLS,
  EPERM,
  KILLED_SYSCALLS,
  TIOCLINUX,
  TIOCSTI,
  hostArch,
  socketDomains,
  type SeccompArch,
} from '../seccomp.js';
import { AARCH64_SYSCALLS, X86_64_SYSCALLS } from '../syscalls.js';

interface ArgRule {
  index: number;
  /** For SCMP_CMP_MASKED_EQ: the mask; valueTwo is what the masked argument must equal. */
  value: number | bigint;
  valueTwo?: number | bigint;
  op: 'SCMP_CMP_GE' | 'SCMP_CMP_LE' | 'SCMP_CMP_MASKED_EQ';
}

/**
 * The runtime that applies the profile. runc: libseccomp, every action. runsc (gVisor 2022, with
 * --oci-seccomp): its sentry knows only the thread variant of kill (which it applies to the whole
 * thread group as well) and ignores `errnoRet` (every errno rule fails with EPERM): so the ENOSYS
 * rules are left out — gVisor implements neither clone3 nor io_uring, they are ENOSYS there already,
 * while EPERM would stop glibc's fallback from clone3 to clone and no thread could start.
 */
export type ProfileRuntime = 'runc' | 'runsc';

interface SyscallRule {
  names: string[];
  action: 'SCMP_ACT_KILL_PROCESS' | 'SCMP_ACT_KILL' | 'SCMP_ACT_ERRNO';
  errnoRet?: number;
  args?: ArgRule[];
}

export interface DockerSeccompProfile {
  defaultAction: 'SCMP_ACT_ALLOW';
  architectures: string[];
  syscalls: SyscallRule[];
}

const DOCKER_ARCH: Record<SeccompArch, string> = { x86_64: 'SCMP_ARCH_X86_64', aarch64: 'SCMP_ARCH_AARCH64' };
const TABLES: Record<SeccompArch, Readonly<Record<string, number>>> = {
  x86_64: X86_64_SYSCALLS,
  aarch64: AARCH64_SYSCALLS,
};
const MAX_U64 = 2n ** 64n - 1n;

/** [from, to] ranges of every 64-bit value except `allowed`. */
function complement(allowed: number[]): [bigint, bigint][] {
  const ranges: [bigint, bigint][] = [];
  let from = 0n;
  for (const value of [...new Set(allowed.map(BigInt))].sort((a, b) => (a < b ? -1 : 1))) {
    if (value > from) ranges.push([from, value - 1n]);
    from = value + 1n;
  }
  if (from <= MAX_U64) ranges.push([from, MAX_U64]);
  return ranges;
}

/** Aligned blocks [base, base + size) covering [from, to] exactly (as CIDR prefixes cover a range). */
function blocks(from: bigint, to: bigint): { base: bigint; size: bigint }[] {
  const out: { base: bigint; size: bigint }[] = [];
  let at = from;
  while (at <= to) {
    let size = 1n;
    while (at % (size * 2n) === 0n && at + size * 2n - 1n <= to) size *= 2n;
    out.push({ base: at, size });
    at += size;
  }
  return out;
}

/**
 * Rules matching every 64-bit value of argument 0 except `allowed`. libseccomp keeps one comparison
 * per argument in a rule (a second one on the same argument does not narrow the first), so each rule
 * has one: LE for the lowest range, GE for the highest, and masked equality per aligned block between.
 */
function outside(
  name: string,
  allowed: number[],
  action: Pick<SyscallRule, 'action' | 'errnoRet'>,
): SyscallRule[] {
  const rule = (arg: ArgRule): SyscallRule => ({ names: [name], ...action, args: [arg] });
  return complement(allowed).flatMap(([from, to]) => {
    if (from === 0n) return [rule({ index: 0, value: to, op: 'SCMP_CMP_LE' })];
    if (to === MAX_U64) return [rule({ index: 0, value: from, op: 'SCMP_CMP_GE' })];
    return blocks(from, to).map(({ base, size }) =>
      rule({ index: 0, value: MAX_U64 ^ (size - 1n), valueTwo: base, op: 'SCMP_CMP_MASKED_EQ' }),
    );
  });
}

/**
 * The profile for a run; `allowNetwork` as in SeccompOptions. Names the architecture does not have
 * are left out (as the BPF filter does); the default action allows, as the filter's last return.
 */
export function dockerSeccompProfile(
  allowNetwork: boolean,
  arch = hostArch(),
  runtime: ProfileRuntime = 'runc',
): DockerSeccompProfile {
  if (arch === undefined) throw new Error(`no seccomp profile for architecture ${process.arch}`);
  const table = TABLES[arch];
  const known = (names: readonly string[]) => names.filter((n) => table[n] !== undefined);
  const kill = {
    action: runtime === 'runc' ? ('SCMP_ACT_KILL_PROCESS' as const) : ('SCMP_ACT_KILL' as const),
  };
  const bits = Array.from({ length: 32 }, (_, i) => 2 ** i).filter((b) => (CLONE_NAMESPACE_FLAGS & b) !== 0);
  return {
    defaultAction: 'SCMP_ACT_ALLOW',
    architectures: [DOCKER_ARCH[arch]],
    syscalls: [
      { names: known(KILLED_SYSCALLS), ...kill },
      ...(runtime === 'runc'
        ? [{ names: known(ENOSYS_SYSCALLS), action: 'SCMP_ACT_ERRNO' as const, errnoRet: ENOSYS }]
        : []),
      // Any namespace flag: one masked comparison per flag (a rule cannot say "any of these bits").
      ...bits.map((bit) => ({
        names: ['clone'],
        ...kill,
        args: [{ index: 0, value: bit, valueTwo: bit, op: 'SCMP_CMP_MASKED_EQ' as const }],
      })),
      ...outside('personality', ALLOWED_PERSONAS, kill),
      ...outside('socket', socketDomains(allowNetwork), { action: 'SCMP_ACT_ERRNO', errnoRet: EAFNOSUPPORT }),
      ...[TIOCSTI, TIOCLINUX].map((request) => ({
        names: ['ioctl'],
        action: 'SCMP_ACT_ERRNO' as const,
        errnoRet: EPERM,
        args: [{ index: 1, value: 0xffffffff, valueTwo: request, op: 'SCMP_CMP_MASKED_EQ' as const }],
      })),
    ],
  };
}

/** The profile as Docker's `seccomp=` security option takes it (JSON text; 64-bit values exact). */
export function dockerSeccompOption(allowNetwork: boolean, runtime: ProfileRuntime = 'runc'): string {
  const json = JSON.stringify(
    dockerSeccompProfile(allowNetwork, hostArch(), runtime),
    (_key, value: unknown) => (typeof value === 'bigint' ? `@@${value}@@` : value),
  );
  return `seccomp=${json.replace(/"@@(\d+)@@"/g, '$1')}`;
}
