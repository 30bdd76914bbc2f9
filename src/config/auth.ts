import { isIP } from 'node:net';
import { z } from 'zod';

/**
 * Who may call the API (`auth`) and from which web origins (`server.cors`). The mode's default
 * depends on where the server listens: beyond loopback a key is always required.
 */

export const AUTH_MODES = ['keys', 'none'] as const;
export type AuthMode = (typeof AUTH_MODES)[number];

export const authConfigSchema = z
  .object({
    /**
     * `keys`: every request but the public ones (/health, /metrics, /languages, /docs) carries
     * `Authorization: Bearer <key>`. `none`: requests without a key act for the built-in tenant
     * `default` with every scope; allowed only when server.host is a loopback address. Default:
     * `none` on loopback, `keys` otherwise.
     */
    mode: z.enum(AUTH_MODES).optional(),
    /** /metrics without a key (what Prometheus scrapers expect); false puts it under the admin scope. */
    publicMetrics: z.boolean().default(true),
  })
  .strict();

export const corsConfigSchema = z
  .object({
    /**
     * Web origins (`https://app.example.com`) whose pages may call the API from a browser. Empty:
     * no CORS headers at all, so browsers keep other sites' pages out.
     */
    origins: z
      .array(
        z
          .string()
          .regex(
            /^https?:\/\/[^/\s]+$/,
            'must be an origin: scheme and host[:port], no path (https://a.example)',
          ),
      )
      .default([]),
  })
  .strict();

/** 127.0.0.0/8, ::1 (also IPv4-mapped) and `localhost`: only this machine can connect. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || /^::ffff:127\./.test(h) || h === '0:0:0:0:0:0:0:1';
  return false;
}

/** The mode in force: the configured one, else `none` on loopback and `keys` anywhere else. */
export function resolveAuthMode(configured: AuthMode | undefined, host: string): AuthMode {
  return configured ?? (isLoopbackHost(host) ? 'none' : 'keys');
}
