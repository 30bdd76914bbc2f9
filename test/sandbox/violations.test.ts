import { afterAll, describe, expect, it } from 'vitest';
import type { RunResult } from '../../src/sandbox/types.js';
import { runCode, testEngine } from './helpers.js';

/**
 * A forbidden system call by any process of a run, not only its first one, makes the run a
 * security_violation naming the call: a forked child killed by seccomp while its parent carries on
 * and exits 0 must not let code probe the filter unnoticed.
 */

const ROOT = process.getuid?.() === 0;
const engine = testEngine();
afterAll(() => engine.shutdown());

const runNamingViolation = (language: 'python' | 'javascript', code: string): Promise<RunResult> =>
  runCode(engine, language, code);

describe.runIf(ROOT)('a forbidden system call in a child process', () => {
  it.each([
    {
      what: 'Python: a forked child calls ptrace, the parent waits and exits 0',
      language: 'python' as const,
      code: [
        'import ctypes, os',
        'pid = os.fork()',
        'if pid == 0:',
        '    ctypes.CDLL(None).syscall(101, 0, 0, 0, 0)',
        '    os._exit(0)',
        '_, status = os.waitpid(pid, 0)',
        'print("child signal", os.WTERMSIG(status) if os.WIFSIGNALED(status) else None)',
      ],
      childSaw: 'child signal 31\n',
      syscall: 'ptrace',
    },
    {
      what: 'Node: a child process calls unshare, the parent carries on and exits 0',
      language: 'javascript' as const,
      code: [
        "const { spawnSync } = require('child_process');",
        "const child = spawnSync('/usr/bin/unshare', ['--user', '/bin/true']);",
        "console.log('child signal', child.signal);",
      ],
      childSaw: 'child signal SIGSYS\n',
      syscall: 'unshare',
    },
  ])('$what', async ({ language, code, childSaw, syscall }) => {
    const r = await runNamingViolation(language, code.join('\n'));
    // The parent saw its child die of SIGSYS and itself ended well.
    expect(r.stdout).toBe(childSaw);
    expect(r.exitCode).toBe(0);
    expect(r.status).toBe('security_violation');
    expect(r.violations).toEqual([expect.objectContaining({ rule: 'forbidden_syscall', syscall })]);
  });

  it('a run that calls nothing forbidden has no violation, though its neighbour did', async () => {
    const [bad, good] = await Promise.all([
      runNamingViolation('python', 'import ctypes\nctypes.CDLL(None).syscall(101, 0, 0, 0, 0)'),
      runCode(
        engine,
        'python',
        'import os\npid = os.fork()\nif pid == 0:\n    os._exit(0)\nos.waitpid(pid, 0)\nprint("fine")',
      ),
    ]);
    expect(bad.status).toBe('security_violation');
    expect(good).toMatchObject({ status: 'success', stdout: 'fine\n', violations: [] });
  });

  it('a flood of violations does not hide the next one (no kernel log rate limit in the way)', async () => {
    // The kernel log lets 10 records through per 5 s host-wide: 30 kills first would use that up.
    const flood = await runCode(
      engine,
      'python',
      [
        'import ctypes, os',
        'for _ in range(30):',
        '    pid = os.fork()',
        '    if pid == 0:',
        '        ctypes.CDLL(None).syscall(101, 0, 0, 0, 0)',
        '    os.waitpid(pid, 0)',
      ].join('\n'),
    );
    expect(flood.status).toBe('security_violation');
    const probe = await runCode(
      engine,
      'python',
      [
        'import ctypes, os',
        'pid = os.fork()',
        'if pid == 0:',
        '    ctypes.CDLL(None).syscall(272, 0, 0, 0, 0)',
        'os.waitpid(pid, 0)',
        'print("parent fine")',
      ].join('\n'),
    );
    expect(probe.stdout).toBe('parent fine\n');
    expect(probe.status).toBe('security_violation');
    expect(probe.violations).toEqual([expect.objectContaining({ syscall: 'unshare' })]);
  });
});
