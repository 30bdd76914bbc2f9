import { describe, expect, it } from 'vitest';
import { quotasConfigSchema, tenantQuotas } from '../../src/config/quotas.js';
import { configSchema } from '../../src/config/schema.js';

describe('quotas configuration', () => {
  it('defaults: 100 requests per second per key, 80% of a queue per tenant, no run or limit caps', () => {
    const quotas = configSchema.parse({}).quotas;
    expect(tenantQuotas(quotas, 100, 'anyone')).toEqual({
      rate: { max: 100, windowMs: 1000 },
      maxQueued: 80,
      maxRunning: undefined,
      maxLimits: {},
    });
    // Rounded up, so a tiny queue still lets a tenant in.
    expect(tenantQuotas(quotas, 2, 'anyone').maxQueued).toBe(2);
    expect(tenantQuotas(quotas, 0, 'anyone').maxQueued).toBe(0);
  });

  it('a tenant override replaces only what it names; maxQueued never exceeds the queue', () => {
    const quotas = quotasConfigSchema.parse({
      rate: { max: 10, windowMs: 2000 },
      queuedShare: 0.5,
      maxRunning: 3,
      maxLimits: { wallTimeMs: 5000, cpus: 1 },
      tenants: { ci: { rate: { max: 50 }, maxQueued: 500, maxRunning: 8, maxLimits: { cpus: 2 } } },
    });
    expect(tenantQuotas(quotas, 100, 'ci')).toEqual({
      rate: { max: 50, windowMs: 2000 },
      maxQueued: 100,
      maxRunning: 8,
      maxLimits: { wallTimeMs: 5000, cpus: 2 },
    });
    expect(tenantQuotas(quotas, 100, 'other')).toMatchObject({ maxQueued: 50, maxRunning: 3 });
  });

  it('refuses what cannot work, naming the key', () => {
    const issue = (quotas: unknown) => {
      const parsed = configSchema.safeParse({ quotas });
      return parsed.success ? undefined : parsed.error.issues[0]?.path.join('.');
    };
    expect(issue({ queuedShare: 0 })).toBe('quotas.queuedShare');
    expect(issue({ queuedShare: 1.5 })).toBe('quotas.queuedShare');
    expect(issue({ rate: { max: 0 } })).toBe('quotas.rate.max');
    expect(issue({ tenants: { 'no spaces': {} } })).toBe('quotas.tenants.no spaces');
    expect(issue({ tenants: { ci: { maxRunning: 0 } } })).toBe('quotas.tenants.ci.maxRunning');
    expect(issue({ tenants: { ci: { bogus: 1 } } })).toBe('quotas.tenants.ci');
  });
});
