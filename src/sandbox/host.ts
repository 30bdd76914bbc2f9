import { existsSync, readFileSync } from 'node:fs';
import { detectCgroups } from './cgroups.js';
import { KILLED_SYSCALLS } from './seccomp.js';

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

export interface HostReport {
  root: boolean;
  kernel: string;
  arch: string;
  cgroups: { version: 1 | 2 | null; detail: string };
  seccomp: { available: boolean; killActions: boolean; killedSyscalls: readonly string[] };
  userNamespaces: { available: boolean; detail: string };
}

/** What the host offers the sandbox backends (for `warden doctor` and /health). */
export function hostReport(cgroupParent: string): HostReport {
  const cg = detectCgroups(cgroupParent);
  const actions = read('/proc/sys/kernel/seccomp/actions_avail') ?? '';
  const maxUserNs = Number(read('/proc/sys/user/max_user_namespaces') ?? 0);
  const debianClone = read('/proc/sys/kernel/unprivileged_userns_clone');
  const userNsOk = maxUserNs > 0 && debianClone !== '0';
  return {
    root: process.getuid?.() === 0,
    kernel: read('/proc/sys/kernel/osrelease') ?? 'unknown',
    arch: process.arch,
    cgroups:
      cg.version === null
        ? { version: null, detail: cg.reason }
        : cg.version === 1
          ? { version: 1, detail: `v1 hierarchies: ${[...new Set(Object.values(cg.mounts))].join(', ')}` }
          : { version: 2, detail: `v2 at ${cg.root}` },
    seccomp: {
      available: existsSync('/proc/sys/kernel/seccomp/actions_avail'),
      killActions: actions.includes('kill_process'),
      killedSyscalls: KILLED_SYSCALLS,
    },
    userNamespaces: {
      available: userNsOk,
      detail: `max_user_namespaces=${maxUserNs}${debianClone !== undefined ? `, unprivileged_userns_clone=${debianClone}` : ''}`,
    },
  };
}
