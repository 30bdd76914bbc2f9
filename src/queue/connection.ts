import type { RedisOptions } from 'bullmq';

export { redactUrl } from '../redact.js';

/**
 * Where Redis is, as ioredis options: `redis://` and `rediss://` URLs as they are, and
 * `unix:///path/to/redis.sock` (optionally `?db=N`), the form of the local redis-server's socket.
 */
export function redisTarget(url: string): RedisOptions {
  if (!url.startsWith('unix://')) return { url };
  const parsed = new URL(url);
  const db = parsed.searchParams.get('db');
  return { path: decodeURIComponent(parsed.pathname), ...(db ? { db: Number(db) } : {}) };
}

/**
 * ioredis options for BullMQ. `producer` connections (the API's) fail fast while Redis is away, so a
 * request gets a 503 at once instead of hanging; `consumer` connections (workers, event listeners)
 * block and wait. Both reconnect with a capped backoff until `stop()` is called, after which they give
 * up, so closing never waits on a Redis that is gone.
 */
export interface RedisConnections {
  producer: RedisOptions;
  consumer: RedisOptions;
  stop(): void;
}

export function redisConnections(url: string): RedisConnections {
  let stopped = false;
  const retryStrategy = (times: number) => (stopped ? null : Math.min(100 * times, 1000));
  const base: RedisOptions = { ...redisTarget(url), connectTimeout: 5000, retryStrategy };
  return {
    producer: { ...base, enableOfflineQueue: false, maxRetriesPerRequest: 1 },
    consumer: { ...base, maxRetriesPerRequest: null },
    stop() {
      stopped = true;
    },
  };
}

/**
 * Gives work that may hang on a dead Redis (BullMQ's close() and waitUntilReady() do) a deadline;
 * true when it succeeded in time.
 */
export async function withDeadline(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
    timer.unref();
  });
  try {
    return await Promise.race([work.then(() => true as const), expired]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/** Redis could not be reached or did not answer: the API answers 503. */
export class QueueUnavailableError extends Error {}

export async function guard<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw new QueueUnavailableError(`queue unavailable: ${(err as Error).message}`);
  }
}
