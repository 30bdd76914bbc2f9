import type { RedisOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { guard } from './connection.js';

/**
 * Admission to a queue: work accepted and not yet taken by a worker holds a place, a member of one
 * sorted set per queue (scored by when it was admitted) and of its tenant's. The checks against the
 * queue's cap and the tenant's share and the adds are one Lua script, so concurrent requests (on any
 * number of API nodes) can never both see the last place free. A worker gives the place back when it
 * takes the work; the recovery pass frees places whose work was refused or lost midway.
 *
 * Keys: `<key>` (every place), `<key>:t:<tenant>` (the tenant's), `<key>:owner` (place → tenant, so a
 * worker releasing a place by id needs no tenant). The tenant key is built in the script: this needs
 * one Redis server, not a cluster (as BullMQ's own keys of one queue do).
 */

/** Several places, all or none: KEYS = all, tenant's, owner; ARGV = cap, tenant cap, score, tenant, ids… */
const ADMIT = `
local n = #ARGV - 4
if redis.call('ZCARD', KEYS[1]) + n > tonumber(ARGV[1]) then return 0 end
if redis.call('ZCARD', KEYS[2]) + n > tonumber(ARGV[2]) then return -1 end
for i = 5, #ARGV do
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[i])
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[i])
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[4])
end
return 1`;

/** KEYS = all, owner; ARGV = id, tenant key prefix. */
const RELEASE = `
redis.call('ZREM', KEYS[1], ARGV[1])
local tenant = redis.call('HGET', KEYS[2], ARGV[1])
if tenant then
  redis.call('ZREM', ARGV[2] .. tenant, ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
end
return 1`;

/** The part of ioredis (a client or BullMQ's) admission uses. */
export interface AdmissionRedis {
  eval(script: string, numKeys: number, ...args: string[]): Promise<unknown>;
  zcard(key: string): Promise<number>;
  zrangebyscore(key: string, min: number, max: number): Promise<string[]>;
}

export type AdmitOutcome = 'admitted' | 'queue_full' | 'tenant_full';

export interface Admission {
  /**
   * A place for each id, or none: `queue_full` when they do not all fit under `caps.queue` places,
   * `tenant_full` when the tenant would hold more than `caps.tenant`.
   */
  admit(
    ids: readonly string[],
    tenant: string,
    caps: { queue: number; tenant: number },
  ): Promise<AdmitOutcome>;
  /** Gives the place back (a worker took the work, or it was refused after all); idempotent. */
  release(id: string): Promise<void>;
  /** Places held (work admitted that no worker has taken yet). */
  depth(): Promise<number>;
  /** Places held by one tenant. */
  tenantDepth(tenant: string): Promise<number>;
  /** Admitted before `beforeMs` (epoch ms) and still holding a place: recovery checks these. */
  admittedBefore(beforeMs: number): Promise<string[]>;
}

/** Admission for the queue whose places live under `key` (e.g. `warden:warden-executions:admitted`). */
export function createAdmission(redis: () => Promise<AdmissionRedis>, key: string): Admission {
  const owner = `${key}:owner`;
  const tenantPrefix = `${key}:t:`;
  return {
    async admit(ids, tenant, caps) {
      if (ids.length === 0) return 'admitted';
      const keys = [key, tenantPrefix + tenant, owner];
      const args = [String(caps.queue), String(caps.tenant), String(Date.now()), tenant, ...ids];
      const r = await guard(async () => (await redis()).eval(ADMIT, keys.length, ...keys, ...args));
      return r === 1 ? 'admitted' : r === -1 ? 'tenant_full' : 'queue_full';
    },
    async release(id) {
      await guard(async () => (await redis()).eval(RELEASE, 2, key, owner, id, tenantPrefix));
    },
    depth: () => guard(async () => (await redis()).zcard(key)),
    tenantDepth: (tenant) => guard(async () => (await redis()).zcard(tenantPrefix + tenant)),
    admittedBefore: (beforeMs) => guard(async () => (await redis()).zrangebyscore(key, 0, beforeMs)),
  };
}

/** A plain ioredis client (not connected yet: `connect()` it) for admission scripts. */
export function redisClient(options: RedisOptions): Redis {
  const { url, ...rest } = options;
  return url ? new Redis(url, { ...rest, lazyConnect: true }) : new Redis({ ...rest, lazyConnect: true });
}
