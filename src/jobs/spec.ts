import { posix } from 'node:path';
import type { JobsConfig } from '../config/jobs.js';
import { CommandError, parseCommand, type CommandAllowList } from './command.js';
import { parseBytes, parseCpu, QuantityError } from './quantity.js';

/**
 * A job request (the seed's JobExecution) checked and turned into what a worker runs. Everything a
 * user can get wrong is a JobRequestError naming the field; nothing here touches a sandbox.
 */

export class JobRequestError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

export interface JobRequest {
  command: string;
  environment?: Record<string, string>;
  /** Seconds. */
  timeout?: number;
  resources?: { cpu?: string | number; memory?: string; disk?: string };
  network?: { outbound?: boolean; allowed_hosts?: string[]; blocked_ports?: number[] };
  files?: { path: string; content: string; mode?: number | string }[];
}

export interface JobLimits {
  timeoutMs: number;
  cpus: number;
  memoryBytes: number;
  diskBytes: number;
}

export interface JobNetwork {
  outbound: boolean;
  allowedHosts: string[];
  /** The request's ports plus the operator's. */
  blockedPorts: number[];
}

/** What the worker runs (stored as the job's spec). */
export interface JobSpec {
  argv: string[];
  env: Record<string, string>;
  limits: JobLimits;
  network: JobNetwork;
}

export interface JobFile {
  path: string;
  /** base64 */
  content: string;
  executable: boolean;
}

export const JOB_WORKDIR = '/box';
export const JOB_OUTDIR = '/out';

const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const MAX_ENV = 128;
const MAX_ENV_VALUE = 32 * 1024;
/**
 * Variables that load code into, or change where code comes from for, the programs a job runs (the
 * dynamic linker, interpreters, shells), and the ones Warden itself sets.
 */
const REFUSED_ENV_EXACT = new Set([
  'PATH',
  'HOME',
  'TMPDIR',
  'NODE_OPTIONS',
  'NODE_PATH',
  'NODE_REPL_EXTERNAL_MODULE',
  'NODE_EXTRA_CA_CERTS',
  'BASH_ENV',
  'ENV',
  'SHELLOPTS',
  'PS4',
  'PERL5LIB',
  'PERL5OPT',
  'PERLLIB',
  'RUBYLIB',
  'RUBYOPT',
  'GCONV_PATH',
  'GLIBC_TUNABLES',
  'LOCPATH',
  'NLSPATH',
  'HOSTALIASES',
  'RES_OPTIONS',
  'LOCALDOMAIN',
  'MALLOC_CHECK_',
  'HTTP_PROXY',
  'HTTPS_PROXY',
  'ALL_PROXY',
  'NO_PROXY',
  'FTP_PROXY',
]);
const REFUSED_ENV_PREFIXES = ['LD_', 'PYTHON', 'NODE_OPTIONS', 'DYLD_', 'WARDEN_'];

function refusedEnv(name: string): boolean {
  const upper = name.toUpperCase();
  return REFUSED_ENV_EXACT.has(upper) || REFUSED_ENV_PREFIXES.some((p) => upper.startsWith(p));
}

function checkEnvironment(env: Record<string, string>): Record<string, string> {
  const entries = Object.entries(env);
  if (entries.length > MAX_ENV)
    throw new JobRequestError('environment', `at most ${MAX_ENV} variables are allowed`);
  for (const [name, value] of entries) {
    const field = `environment.${name}`;
    if (!ENV_NAME_RE.test(name) || name.length > 128) {
      throw new JobRequestError(
        field,
        `${JSON.stringify(name)} is not a valid variable name (letters, digits and _, not starting with a digit)`,
      );
    }
    if (refusedEnv(name)) {
      throw new JobRequestError(
        field,
        `${name} may not be set: it changes which code runs (dynamic linker, interpreter options, PATH) or is Warden's own`,
      );
    }
    if (value.includes('\0')) throw new JobRequestError(field, 'the value contains a NUL byte');
    if (value.length > MAX_ENV_VALUE)
      throw new JobRequestError(field, `longer than ${MAX_ENV_VALUE} characters`);
  }
  return Object.fromEntries(entries);
}

const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

function fileMode(mode: number | string | undefined, field: string): boolean {
  if (mode === undefined) return false;
  const value = typeof mode === 'number' ? mode : /^0?[0-7]{3}$/.test(mode) ? parseInt(mode, 8) : NaN;
  if (!Number.isInteger(value) || value < 0 || value > 0o777) {
    throw new JobRequestError(
      field,
      'mode must be permission bits, e.g. 420 or "0644" (0755 for executables)',
    );
  }
  return (value & 0o111) !== 0;
}

function checkFiles(files: NonNullable<JobRequest['files']>, config: JobsConfig): JobFile[] {
  if (files.length > config.maxFiles)
    throw new JobRequestError('files', `at most ${config.maxFiles} files are allowed`);
  const seen = new Set<string>();
  const dirs = new Set<string>();
  return files.map((f, i) => {
    const field = `files.${i}.path`;
    const path = f.path;
    const parts = path.split('/');
    if (
      path.length === 0 ||
      path.length > 1024 ||
      path.includes('\0') ||
      posix.isAbsolute(path) ||
      parts.some((p) => p === '..' || p === '.' || p === '' || p.length > 255)
    ) {
      throw new JobRequestError(
        field,
        `${JSON.stringify(path)} is not a plain relative path inside the working dir (no leading /, no . or .. parts, no empty parts)`,
      );
    }
    if (seen.has(path) || dirs.has(path))
      throw new JobRequestError(field, `${JSON.stringify(path)} is given twice`);
    for (let d = 1; d < parts.length; d++) {
      const dir = parts.slice(0, d).join('/');
      if (seen.has(dir))
        throw new JobRequestError(field, `${JSON.stringify(dir)} is both a file and a directory`);
      dirs.add(dir);
    }
    seen.add(path);
    const content = f.content;
    if (content.length % 4 !== 0 || !BASE64_RE.test(content)) {
      throw new JobRequestError(`files.${i}.content`, 'content must be base64 (RFC 4648, with padding)');
    }
    const size = (content.length / 4) * 3 - (content.endsWith('==') ? 2 : content.endsWith('=') ? 1 : 0);
    if (size > config.maxFileBytes) {
      throw new JobRequestError(
        `files.${i}.content`,
        `the file is ${size} bytes; at most ${config.maxFileBytes} are allowed`,
      );
    }
    return { path, content, executable: fileMode(f.mode, `files.${i}.mode`) };
  });
}

const HOST_RE =
  /^(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const IPV4_RE = /^\d{1,3}(\.\d{1,3}){3}$/;

function checkNetwork(network: NonNullable<JobRequest['network']>, config: JobsConfig): JobNetwork {
  const outbound = network.outbound ?? false;
  const allowedHosts = (network.allowed_hosts ?? []).map((h) => h.toLowerCase());
  const requestedPorts = network.blocked_ports ?? [];
  if (outbound) {
    if (!config.network.enabled) {
      throw new JobRequestError('network.outbound', 'outbound network is disabled on this server');
    }
    if (allowedHosts.length === 0) {
      throw new JobRequestError(
        'network.allowed_hosts',
        'outbound network goes only to listed hosts: name at least one (e.g. "api.github.com" or "*.example.org")',
      );
    }
  }
  allowedHosts.forEach((host, i) => {
    if (host.length > 253 || !(HOST_RE.test(host) || IPV4_RE.test(host))) {
      throw new JobRequestError(
        `network.allowed_hosts.${i}`,
        `${JSON.stringify(host)} is not a host name, "*.suffix" wildcard or IPv4 address`,
      );
    }
  });
  return {
    outbound,
    allowedHosts,
    blockedPorts: [...new Set([...config.network.blockedPorts, ...requestedPorts])].sort((a, b) => a - b),
  };
}

function quantity<T>(field: string, parse: (text: string) => T, text: string): T {
  try {
    return parse(text);
  } catch (err) {
    if (err instanceof QuantityError) throw new JobRequestError(field, err.message);
    throw err;
  }
}

function checkLimits(request: JobRequest, config: JobsConfig): JobLimits {
  const { defaults, maxLimits } = config;
  const r = request.resources ?? {};
  const cpus = r.cpu === undefined ? defaults.cpu : quantity('resources.cpu', parseCpu, String(r.cpu));
  const memoryBytes =
    r.memory === undefined ? defaults.memoryBytes : quantity('resources.memory', parseBytes, r.memory);
  const diskBytes =
    r.disk === undefined ? defaults.diskBytes : quantity('resources.disk', parseBytes, r.disk);
  const timeout = request.timeout ?? defaults.timeoutSeconds;
  return {
    timeoutMs: Math.round(Math.min(timeout, maxLimits.timeoutSeconds) * 1000),
    cpus: Math.min(cpus, maxLimits.cpu),
    memoryBytes: Math.min(memoryBytes, maxLimits.memoryBytes),
    diskBytes: Math.min(diskBytes, maxLimits.diskBytes),
  };
}

export function prepareJob(
  request: JobRequest,
  config: JobsConfig,
  allowList: CommandAllowList,
): { spec: JobSpec; files: JobFile[] } {
  let argv: string[];
  try {
    argv = allowList.resolve(parseCommand(request.command));
  } catch (err) {
    if (err instanceof CommandError) throw new JobRequestError('command', err.message);
    throw err;
  }
  const env = checkEnvironment(request.environment ?? {});
  const limits = checkLimits(request, config);
  const network = checkNetwork(request.network ?? {}, config);
  const files = checkFiles(request.files ?? [], config);
  return { spec: { argv, env, limits, network }, files };
}
