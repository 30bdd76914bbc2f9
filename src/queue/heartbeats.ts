import { hostname } from 'node:os';
import { Redis } from 'ioredis';
import {
  QueueUnavailableError,
  redactUrl,
  redisConnections,
  withDeadline,
  type RedisConnections,
} from './connection.js';

/**
 * Worker heartbeats: each worker process keeps one Redis key alive (refreshed every interval, expiring
 * after three missed beats), so anyone can list the workers alive now, by role, across machines.
 */

export const WORKER_ROLES = ['executions', 'validation', 'tasks', 'jobs'] as const;
export type WorkerRole = (typeof WORKER_ROLES)[number];

export interface WorkerBeat {
  id: string;
  host: string;
  pid: number;
  roles: WorkerRole[];
  backend: string;
  /** Jobs per role at once. */
  concurrency: number;
  started_at: string;
  /** When this beat was written. */
  seen_at: string;
}

export interface Heartbeats {
  /** Worker processes whose heartbeat has not expired, oldest first. */
  live(): Promise<WorkerBeat[]>;
  /** Announces a worker process until the returned stop() (which removes its key at once). */
  announce(beat: Omit<WorkerBeat, 'seen_at'>, intervalMs: number): { stop(): Promise<void> };
  close(): Promise<void>;
}

/** Unique per worker, also for several workers in one process (tests, `warden serve` + roles). */
export function workerId(): string {
  return `${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
}

export async function openHeartbeats(options: {
  redisUrl: string;
  prefix: string;
  onError?: (err: Error) => void;
}): Promise<Heartbeats> {
  const connections: RedisConnections = redisConnections(options.redisUrl);
  const { url, ...rest } = connections.producer;
  const redis = url
    ? new Redis(url, { ...rest, lazyConnect: true })
    : new Redis({ ...rest, lazyConnect: true });
  redis.on('error', (err: Error) => options.onError?.(err));
  if (!(await withDeadline(redis.connect(), 10_000))) {
    connections.stop();
    redis.disconnect();
    throw new QueueUnavailableError(`cannot reach Redis at ${redactUrl(options.redisUrl)}`);
  }
  const keyPrefix = `${options.prefix}:heartbeat:`;
  const announced = new Set<{ stop(): Promise<void> }>();

  return {
    async live() {
      const keys: string[] = [];
      let cursor = '0';
      do {
        const [next, batch] = await redis.scan(cursor, 'MATCH', `${keyPrefix}*`, 'COUNT', 200);
        cursor = next;
        keys.push(...batch);
      } while (cursor !== '0');
      if (keys.length === 0) return [];
      const values = await redis.mget(...keys);
      const beats: WorkerBeat[] = [];
      for (const value of values) {
        if (value === null) continue; // expired between the scan and the read
        try {
          beats.push(JSON.parse(value) as WorkerBeat);
        } catch {
          // not ours; ignore
        }
      }
      return beats.sort((a, b) => a.started_at.localeCompare(b.started_at));
    },
    announce(beat, intervalMs) {
      const key = `${keyPrefix}${beat.id}`;
      const ttl = intervalMs * 3;
      const write = () =>
        redis
          .set(key, JSON.stringify({ ...beat, seen_at: new Date().toISOString() }), 'PX', ttl)
          .catch((err: Error) => options.onError?.(err));
      void write();
      const timer = setInterval(write, intervalMs);
      timer.unref();
      let stopping: Promise<void> | undefined;
      const handle = {
        stop() {
          stopping ??= (async () => {
            clearInterval(timer);
            announced.delete(handle);
            await withDeadline(redis.del(key), 1000);
          })();
          return stopping;
        },
      };
      announced.add(handle);
      return handle;
    },
    async close() {
      for (const handle of [...announced]) await handle.stop();
      connections.stop();
      await withDeadline(redis.quit(), 1000);
      redis.disconnect();
    },
  };
}
