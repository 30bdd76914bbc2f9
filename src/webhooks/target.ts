import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { WebhooksConfig } from '../config/webhooks.js';
import {
  addressRefusal,
  normaliseHost,
  parseAddress,
  parseAllowPrivate,
  specialKind,
  type PrivateAllowance,
} from '../jobs/proxy-policy.js';

/**
 * Where a callback may go (SSRF, CVE-2024-29021 class): an http(s) URL whose host resolves only to
 * public addresses, unless the operator allows more. The check resolves the name itself and hands
 * back the addresses it judged, and delivery connects to one of those, never resolving again: a name
 * that answers differently the second time (DNS rebinding) cannot move the connection.
 */

/** The callback is refused: the message says why, for a 400 or a recorded attempt. */
export class CallbackRefused extends Error {}

/** The name could not be resolved now (worth retrying later, unlike a refusal). */
export class CallbackUnresolved extends Error {}

export interface CheckedTarget {
  url: URL;
  /** The host as the URL names it (no brackets), sent as Host and used for TLS. */
  host: string;
  port: number;
  /** Every address the host resolved to, each one judged; delivery connects to these only. */
  addresses: string[];
}

export type Resolver = (host: string) => Promise<string[]>;

export const systemResolver: Resolver = async (host) =>
  (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);

/**
 * Where cloud metadata services answer: IPv4 link-local (169.254.169.254, 169.254.170.2, …, also
 * inside IPv6 forms) and AWS's fd00:ec2::254. `allowPrivate` alone never opens these.
 */
const EC2_V6 = parseAddress('fd00:ec2::254')!;
const LINK_LOCAL_V4 = 'link-local (cloud metadata)';

function metadata(address: string): boolean {
  if (specialKind(address)?.startsWith(LINK_LOCAL_V4)) return true;
  const bytes = parseAddress(address)!;
  return bytes.length === EC2_V6.length && bytes.every((b, i) => b === EC2_V6[i]);
}

export interface TargetPolicy {
  allowPrivate: boolean;
  allowance: PrivateAllowance;
}

export function targetPolicy(config: Pick<WebhooksConfig, 'allowPrivate' | 'allowlist'>): TargetPolicy {
  return { allowPrivate: config.allowPrivate, allowance: parseAllowPrivate(config.allowlist) };
}

function refusal(host: string, address: string, policy: TargetPolicy): string | undefined {
  const why = addressRefusal(host, address, policy.allowance);
  return why && policy.allowPrivate && !metadata(address) ? undefined : why;
}

/** Syntax only (no DNS): what can be said about the URL without the network. */
export function parseCallbackUrl(text: string): { url: URL; host: string; port: number } {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new CallbackRefused('not a URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new CallbackRefused(`the scheme must be http or https, not ${url.protocol.slice(0, -1)}`);
  const raw = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const host = normaliseHost(raw);
  if (!host) throw new CallbackRefused(`${JSON.stringify(url.hostname)} is not a host name or an address`);
  const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
  return { url, host, port };
}

/**
 * Parses, resolves and judges a callback URL. Any refused address refuses the URL: a name resolving
 * to a public and a private address is what a rebinding attack looks like.
 */
export async function checkCallbackUrl(
  text: string,
  policy: TargetPolicy,
  resolve: Resolver = systemResolver,
): Promise<CheckedTarget> {
  const { url, host, port } = parseCallbackUrl(text);
  let addresses: string[];
  try {
    addresses = isIP(host) ? [host] : await resolve(host);
  } catch (err) {
    throw new CallbackUnresolved(`cannot resolve ${host}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  if (addresses.length === 0) throw new CallbackUnresolved(`${host} has no address`);
  for (const address of addresses) {
    const why = refusal(host, address, policy);
    if (why) throw new CallbackRefused(host === address ? why : `${host} resolves to ${why}`);
  }
  return { url, host, port, addresses };
}
