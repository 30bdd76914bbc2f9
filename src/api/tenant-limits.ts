import { tenantQuotas, type TenantQuotas } from '../config/quotas.js';
import type { WardenConfig } from '../config/schema.js';
import type { JobLimits } from '../jobs/spec.js';
import type { RequestLimits } from '../runner/contract.js';
import { ApiError } from './errors.js';

/**
 * A tenant's ceilings (quotas.maxLimits, quotas.tenants.<name>.maxLimits) on the limits its requests
 * ask for. Unlike sandbox.maxLimits, which clamps, asking past a tenant's ceiling is a 400 naming the
 * field: the caller learns what it may have. A limit the request leaves to the server's default is
 * lowered to the ceiling instead, so a tenant never runs past it.
 */

type Config = Pick<WardenConfig, 'quotas' | 'server' | 'sandbox'>;
type Ceiling = keyof TenantQuotas['maxLimits'];

const MiB = 1024 * 1024;

function over(field: string, asked: string, ceiling: string): ApiError {
  return new ApiError(
    400,
    'limit_above_tenant_ceiling',
    `${field}: ${asked} is above the ceiling of ${ceiling} for your tenant (quotas.maxLimits)`,
    field,
  );
}

const ceilings = (config: Config, tenant: string) =>
  tenantQuotas(config.quotas, config.server.maxQueueDepth, tenant).maxLimits;

/** An execution's `limits` within the tenant's ceilings (throws 400 naming `limits.<field>`). */
export function executionWithinTenant(
  config: Config,
  tenant: string,
  limits: RequestLimits | undefined,
): RequestLimits | undefined {
  const max = ceilings(config, tenant);
  const defaults = config.sandbox.limits;
  const fields: { field: keyof RequestLimits & string; ceiling: Ceiling; scale: number; unit: string }[] = [
    { field: 'timeout', ceiling: 'wallTimeMs', scale: 1000, unit: 's' },
    { field: 'memory_limit', ceiling: 'memoryBytes', scale: MiB, unit: 'MiB' },
    { field: 'cpu_limit', ceiling: 'cpus', scale: 1, unit: 'cores' },
  ];
  let out = limits;
  for (const { field, ceiling, scale, unit } of fields) {
    const top = max[ceiling];
    if (top === undefined) continue;
    const asked = limits?.[field] as number | undefined;
    if (asked !== undefined && asked * scale > top)
      throw over(`limits.${field}`, `${asked} ${unit}`, `${top / scale} ${unit}`);
    if (asked === undefined && defaults[ceiling] > top)
      out = { network_access: false, ...out, [field]: top / scale };
  }
  return out;
}

/** A job's limits within the tenant's ceilings; `asked` says which the request gave (400 for those). */
export function jobWithinTenant(
  config: Config,
  tenant: string,
  limits: JobLimits,
  asked: { timeout: boolean; cpu: boolean; memory: boolean },
): JobLimits {
  const max = ceilings(config, tenant);
  const out = { ...limits };
  if (max.wallTimeMs !== undefined && out.timeoutMs > max.wallTimeMs) {
    if (asked.timeout) throw over('timeout', `${out.timeoutMs / 1000} s`, `${max.wallTimeMs / 1000} s`);
    out.timeoutMs = max.wallTimeMs;
  }
  if (max.cpus !== undefined && out.cpus > max.cpus) {
    if (asked.cpu) throw over('resources.cpu', `${out.cpus} cores`, `${max.cpus} cores`);
    out.cpus = max.cpus;
  }
  if (max.memoryBytes !== undefined && out.memoryBytes > max.memoryBytes) {
    if (asked.memory) throw over('resources.memory', `${out.memoryBytes} bytes`, `${max.memoryBytes} bytes`);
    out.memoryBytes = max.memoryBytes;
  }
  return out;
}
