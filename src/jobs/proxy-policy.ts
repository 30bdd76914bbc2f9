import { isIP } from 'node:net';

/**
 * What the egress proxy lets a job reach (SPEC §7): names on the job's allow-list, ports off the
 * block list, and never an address inside the host's own networks unless the operator listed it.
 * Pure functions; the proxy applies them to the addresses it resolved itself.
 */

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;
const MAX_NAME = 253;

/**
 * `Example.COM.` → `example.com`; `[::1]` → `::1`. Undefined for anything that is neither an IP
 * address nor a DNS name (so `evil.com\0.allowed.com`, spaces, underscores, empty labels never match).
 */
export function normaliseHost(host: string): string | undefined {
  let h = host.trim().toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  if (isIP(h) === 4) return h;
  // One spelling per IPv6 address (`0:0::1` → `::1`), as the URL standard writes it; zones never.
  if (isIP(h) === 6) return h.includes('%') ? undefined : new URL(`http://[${h}]/`).hostname.slice(1, -1);
  if (h.endsWith('.')) h = h.slice(0, -1);
  if (h.length === 0 || h.length > MAX_NAME) return undefined;
  const labels = h.split('.');
  // An all-numeric last label is no DNS name but an address in a form inet_aton accepts (`127.1`,
  // `0x7f.1`): it would dodge the allow-list's literal match.
  if (/^(\d+|0x[0-9a-f]*)$/.test(labels.at(-1)!)) return undefined;
  return labels.every((l) => LABEL.test(l)) ? h : undefined;
}

export type HostPattern = { exact: string } | { suffix: string };

/** `api.example.com` matches itself; `*.example.com` matches every name under it, not itself. */
export function parseHostPattern(pattern: string): HostPattern | undefined {
  const p = pattern.trim();
  if (p.startsWith('*.')) {
    const suffix = normaliseHost(p.slice(2));
    return suffix && isIP(suffix) === 0 ? { suffix } : undefined;
  }
  const exact = normaliseHost(p);
  return exact ? { exact } : undefined;
}

export function hostAllowed(host: string, patterns: readonly HostPattern[]): boolean {
  const h = normaliseHost(host);
  if (!h) return false;
  return patterns.some((p) => ('exact' in p ? p.exact === h : isIP(h) === 0 && h.endsWith(`.${p.suffix}`)));
}

// ---- addresses ----

/** 4 bytes for IPv4, 16 for IPv6; undefined when not an address. */
export function parseAddress(address: string): Uint8Array | undefined {
  const a = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  const kind = isIP(a);
  if (kind === 4) return Uint8Array.from(a.split('.').map(Number));
  if (kind !== 6 || a.includes('%')) return undefined;
  let text = a;
  const lastColon = text.lastIndexOf(':');
  const quad = text.slice(lastColon + 1);
  if (quad.includes('.')) {
    // An embedded dotted quad (::ffff:1.2.3.4) is the last two groups.
    const [b0, b1, b2, b3] = quad.split('.').map(Number) as [number, number, number, number];
    text = `${text.slice(0, lastColon + 1)}${((b0 << 8) | b1).toString(16)}:${((b2 << 8) | b3).toString(16)}`;
  }
  const [head, rest] = text.includes('::') ? text.split('::') : [text, undefined];
  const groups = (s: string | undefined) => (s ? s.split(':').map((g) => parseInt(g, 16)) : []);
  const left = groups(head);
  const right = groups(rest);
  const fill = rest === undefined ? [] : new Array<number>(8 - left.length - right.length).fill(0);
  const words = [...left, ...fill, ...right];
  if (words.length !== 8) return undefined;
  const bytes = new Uint8Array(16);
  words.forEach((w, i) => {
    bytes[2 * i] = w >> 8;
    bytes[2 * i + 1] = w & 0xff;
  });
  return bytes;
}

interface Cidr {
  bytes: Uint8Array;
  bits: number;
}

export function parseCidr(text: string): Cidr | undefined {
  const [addr, len, extra] = text.trim().split('/');
  if (extra !== undefined || addr === undefined) return undefined;
  const bytes = parseAddress(addr);
  if (!bytes) return undefined;
  const bits = len === undefined ? bytes.length * 8 : Number(len);
  if (!/^\d+$/.test(len ?? '0') || bits > bytes.length * 8) return undefined;
  return { bytes, bits };
}

function inCidr(bytes: Uint8Array, cidr: Cidr): boolean {
  if (bytes.length !== cidr.bytes.length) return false;
  for (let bit = 0; bit < cidr.bits; bit += 8) {
    const mask = cidr.bits - bit >= 8 ? 0xff : (0xff << (8 - (cidr.bits - bit))) & 0xff;
    if ((bytes[bit / 8]! & mask) !== (cidr.bytes[bit / 8]! & mask)) return false;
  }
  return true;
}

const ranges = (list: [string, string][]) => list.map(([cidr, kind]) => ({ cidr: parseCidr(cidr)!, kind }));

/** Everything that is not the public internet, by kind (first match wins). */
const V4_SPECIAL = ranges([
  ['0.0.0.0/8', 'unspecified'],
  ['10.0.0.0/8', 'private'],
  ['100.64.0.0/10', 'shared (CGNAT)'],
  ['127.0.0.0/8', 'loopback'],
  ['169.254.0.0/16', 'link-local (cloud metadata)'],
  ['172.16.0.0/12', 'private'],
  ['192.0.0.0/24', 'reserved'],
  ['192.0.2.0/24', 'documentation'],
  ['192.88.99.0/24', 'reserved'],
  ['192.168.0.0/16', 'private'],
  ['198.18.0.0/15', 'benchmarking'],
  ['198.51.100.0/24', 'documentation'],
  ['203.0.113.0/24', 'documentation'],
  ['224.0.0.0/4', 'multicast'],
  ['240.0.0.0/4', 'reserved'],
]);
const V6_SPECIAL = ranges([
  ['::/128', 'unspecified'],
  ['::1/128', 'loopback'],
  ['100::/64', 'discard'],
  ['64:ff9b:1::/48', 'local NAT64'],
  ['2001::/32', 'Teredo'],
  ['2001:db8::/32', 'documentation'],
  ['fc00::/7', 'unique local (private)'],
  ['fe80::/10', 'link-local'],
  ['fec0::/10', 'site-local'],
  ['ff00::/8', 'multicast'],
]);
/** IPv6 forms that carry an IPv4 address, which is what they reach: [prefix, offset of the v4]. */
const V4_CARRIERS: [Cidr, number][] = [
  [parseCidr('::ffff:0:0/96')!, 12], // IPv4-mapped
  [parseCidr('::/96')!, 12], // IPv4-compatible (deprecated, still routed by some stacks)
  [parseCidr('64:ff9b::/96')!, 12], // NAT64
  [parseCidr('2002::/16')!, 2], // 6to4
];

/** Why `address` is not on the public internet, or undefined when it is. */
export function specialKind(address: string): string | undefined {
  const bytes = parseAddress(address);
  if (!bytes) return 'not an IP address';
  return kindOf(bytes);
}

function kindOf(bytes: Uint8Array): string | undefined {
  if (bytes.length === 4) return V4_SPECIAL.find((r) => inCidr(bytes, r.cidr))?.kind;
  const direct = V6_SPECIAL.find((r) => inCidr(bytes, r.cidr));
  if (direct) return direct.kind;
  for (const [prefix, at] of V4_CARRIERS) {
    if (inCidr(bytes, prefix)) {
      const kind = kindOf(bytes.slice(at, at + 4));
      if (kind) return `${kind}, inside an IPv6 address`;
    }
  }
  return undefined;
}

/** The operator's `jobs.network.allowPrivate`: CIDRs (or single addresses) and host names. */
export interface PrivateAllowance {
  cidrs: Cidr[];
  hosts: HostPattern[];
}

/** For config validation: whether `entry` is a CIDR, an address or a host name (`*.suffix` too). */
export function isAllowPrivateEntry(entry: string): boolean {
  return parseCidr(entry) !== undefined || parseHostPattern(entry) !== undefined;
}

export function parseAllowPrivate(entries: readonly string[]): PrivateAllowance {
  const cidrs: Cidr[] = [];
  const hosts: HostPattern[] = [];
  for (const entry of entries) {
    const cidr = parseCidr(entry);
    if (cidr) {
      cidrs.push(cidr);
      continue;
    }
    const host = parseHostPattern(entry);
    if (!host)
      throw new Error(
        `jobs.network.allowPrivate: ${JSON.stringify(entry)} is neither a CIDR nor a host name`,
      );
    hosts.push(host);
  }
  return { cidrs, hosts };
}

/**
 * Undefined when the job may connect to `address` (which `host` resolved to), else the reason.
 * An IPv6 address carrying an IPv4 one is judged, and allowed, by the IPv4 address it reaches.
 */
export function addressRefusal(host: string, address: string, allow: PrivateAllowance): string | undefined {
  const bytes = parseAddress(address);
  if (!bytes) return `${address} is not an IP address`;
  const kind = kindOf(bytes);
  if (!kind) return undefined;
  if (hostAllowed(host, allow.hosts)) return undefined;
  const embedded = bytes.length === 16 ? V4_CARRIERS.find(([p]) => inCidr(bytes, p)) : undefined;
  const candidates = embedded ? [bytes, bytes.slice(embedded[1], embedded[1] + 4)] : [bytes];
  if (allow.cidrs.some((c) => candidates.some((b) => inCidr(b, c)))) return undefined;
  return `${address} is ${kind}`;
}
