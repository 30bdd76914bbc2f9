import { existsSync, readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { configSchema, type WardenConfig } from './schema.js';

export class ConfigError extends Error {}

/** Every problem as `path.to.key: message`, so the operator knows which key (or variable, or flag) to fix. */
function describe(error: z.ZodError, origin: Map<string, string>): string {
  return error.issues
    .map((i) => {
      const key = i.path.join('.') || '(root)';
      const variable = origin.get(key);
      return `${key}${variable ? ` (from ${variable})` : ''}: ${i.message}`;
    })
    .join('; ');
}

/** Environment variable → config key (dotted); numbers are converted only when they look like one. */
export const ENV_OVERRIDES: [string, string, boolean][] = [
  ['WARDEN_DATA_DIR', 'dataDir', false],
  ['WARDEN_BACKEND', 'sandbox.backend', false],
  ['WARDEN_HOST', 'server.host', false],
  ['WARDEN_PORT', 'server.port', true],
  ['DATABASE_URL', 'store.databaseUrl', false],
  ['REDIS_URL', 'queue.redisUrl', false],
  ['UPLOAD_STAGING_DIR', 'tasks.stagingDir', false],
  ['TASKS_DIR', 'tasks.dir', false],
  ['QUARANTINE_DIR', 'tasks.quarantineDir', false],
  ['TASK_VALIDATION_QUEUE_NAME', 'tasks.validationQueue', false],
  ['TASK_QUEUE_NAME', 'tasks.taskQueue', false],
];

/** Sets `a.b.c` without touching sibling keys that came from the file. */
function setIn(target: Record<string, unknown>, dotted: string, value: unknown): void {
  const keys = dotted.split('.');
  let node = target;
  for (const key of keys.slice(0, -1)) {
    const child = node[key];
    const copy = child && typeof child === 'object' && !Array.isArray(child) ? { ...child } : {};
    node[key] = copy;
    node = copy as Record<string, unknown>;
  }
  node[keys[keys.length - 1] as string] = value;
}

/** A command-line flag's value for a config key (dotted), e.g. `--port` → `server.port`. */
export interface ConfigFlag {
  key: string;
  value: unknown;
  flag: string;
}

/**
 * Reads the config once at start-up: the YAML file (WARDEN_CONFIG or ./warden.yaml when present),
 * then environment overrides, then command-line flags, validated into one object that is passed down.
 */
export function loadConfig(
  options: { path?: string; env?: NodeJS.ProcessEnv; flags?: ConfigFlag[] } = {},
): WardenConfig {
  const env = options.env ?? process.env;
  const path = options.path ?? env.WARDEN_CONFIG ?? (existsSync('warden.yaml') ? 'warden.yaml' : undefined);
  let raw: Record<string, unknown> = {};
  if (path) {
    if (!existsSync(path)) throw new ConfigError(`config file not found: ${path}`);
    try {
      raw = (parseYaml(readFileSync(path, 'utf8')) as Record<string, unknown> | null) ?? {};
    } catch (err) {
      throw new ConfigError(`${path}: not valid YAML: ${(err as Error).message}`);
    }
  }
  const merged: Record<string, unknown> = { ...raw };
  const origin = new Map<string, string>();
  for (const [variable, key, asNumber] of ENV_OVERRIDES) {
    const value = env[variable];
    if (value === undefined || value === '') continue;
    origin.set(key, variable);
    setIn(merged, key, asNumber && /^\d+$/.test(value.trim()) ? Number(value) : value);
  }
  for (const { key, value, flag } of options.flags ?? []) {
    origin.set(key, flag);
    setIn(merged, key, value);
  }
  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) throw new ConfigError(`invalid configuration: ${describe(parsed.error, origin)}`);
  return parsed.data;
}
