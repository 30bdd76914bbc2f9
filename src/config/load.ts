import { existsSync, readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { configSchema, type WardenConfig } from './schema.js';

export class ConfigError extends Error {}

/** Every problem as `path.to.key: message`, so the operator knows which key to fix. */
function describe(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
}

/**
 * Reads the config once at start-up: the YAML file (WARDEN_CONFIG or ./warden.yaml when present),
 * then environment overrides, validated into one object that is passed down.
 */
export function loadConfig(
  options: { path?: string; env?: NodeJS.ProcessEnv; overrides?: Record<string, unknown> } = {},
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
  const merged = { ...raw, ...options.overrides };
  if (env.WARDEN_DATA_DIR) merged.dataDir = env.WARDEN_DATA_DIR;
  if (env.WARDEN_BACKEND) {
    merged.sandbox = { ...(merged.sandbox as object | undefined), backend: env.WARDEN_BACKEND };
  }
  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) throw new ConfigError(`invalid configuration: ${describe(parsed.error)}`);
  return parsed.data;
}
