/**
 * SOCKS5 (RFC 1928) for the egress proxy, the parts a client behind `socks5h://` uses: no
 * authentication, CONNECT, and targets by name, IPv4 or IPv6 address. Pure parsing and replies; the
 * proxy applies the same checks as to HTTP requests.
 */

export const SOCKS_VERSION = 5;

/** Reply codes (RFC 1928 §6). */
export const SOCKS_REPLY = {
  succeeded: 0,
  generalFailure: 1,
  notAllowed: 2,
  hostUnreachable: 4,
  connectionRefused: 5,
  commandNotSupported: 7,
  addressTypeNotSupported: 8,
} as const;

/** The greeting: `undefined` until complete, then whether "no authentication" is offered. */
export function parseGreeting(buf: Buffer): { noAuth: boolean; used: number } | undefined {
  if (buf.length < 2) return undefined;
  const n = buf[1]!;
  if (buf.length < 2 + n) return undefined;
  return { noAuth: buf.subarray(2, 2 + n).includes(0), used: 2 + n };
}

export type SocksRequest = { host: string; port: number; used: number } | { error: number; message: string };

/** A request: `undefined` until complete; hosts come out as the HTTP side spells them. */
export function parseRequest(buf: Buffer): SocksRequest | undefined {
  if (buf.length < 5) return undefined;
  if (buf[0] !== SOCKS_VERSION) return { error: SOCKS_REPLY.generalFailure, message: 'not SOCKS5' };
  if (buf[1] !== 1)
    return { error: SOCKS_REPLY.commandNotSupported, message: 'only SOCKS CONNECT is proxied' };
  let host: string;
  let at: number;
  switch (buf[3]) {
    case 1:
      at = 8;
      if (buf.length < at + 2) return undefined;
      host = [...buf.subarray(4, 8)].join('.');
      break;
    case 3:
      at = 5 + buf[4]!;
      if (buf.length < at + 2) return undefined;
      host = buf.toString('latin1', 5, at);
      break;
    case 4: {
      at = 20;
      if (buf.length < at + 2) return undefined;
      const groups = Array.from({ length: 8 }, (_, i) => buf.readUInt16BE(4 + 2 * i).toString(16));
      host = `[${groups.join(':')}]`;
      break;
    }
    default:
      return { error: SOCKS_REPLY.addressTypeNotSupported, message: 'unknown SOCKS address type' };
  }
  return { host, port: buf.readUInt16BE(at), used: at + 2 };
}

/** A reply with an all-zero bound address (clients do not use it for CONNECT). */
export function reply(code: number): Buffer {
  return Buffer.from([SOCKS_VERSION, code, 0, 1, 0, 0, 0, 0, 0, 0]);
}
