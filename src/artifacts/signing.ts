import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * HMAC-SHA256 signatures of local download URLs. A signature covers the key and the expiry, so it
 * can neither be moved to another key nor extended; it is checked before anything touches the disk.
 */
export interface UrlSigner {
  sign(key: string, expiresAtSeconds: number): string;
  /** Constant-time; false for anything that is not our signature of exactly this key and expiry. */
  verify(key: string, expiresAtSeconds: number, signature: string): boolean;
}

export function createSigner(secret: string | Buffer): UrlSigner {
  const mac = (key: string, expires: number): Buffer =>
    // The key cannot hold a newline (keys.ts refuses control characters): the message is unambiguous.
    createHmac('sha256', secret).update(`${key}\n${expires}`).digest();
  return {
    sign: (key, expires) => mac(key, expires).toString('base64url'),
    verify(key, expires, signature) {
      if (!/^[A-Za-z0-9_-]{43}$/.test(signature)) return false;
      return timingSafeEqual(mac(key, expires), Buffer.from(signature, 'base64url'));
    },
  };
}

/**
 * The host's signing key: created once (random, mode 0600) and then read by every process, so that
 * restarts and several API processes on one host accept each other's URLs. Creation is a hard link
 * of a complete temp file, so two processes starting at once cannot both win or read half a key.
 */
export function loadOrCreateSecret(path: string): Buffer {
  try {
    return readSecret(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const temp = join(dirname(path), `.signing-key-${process.pid}-${randomBytes(6).toString('hex')}`);
  writeFileSync(temp, randomBytes(32).toString('hex'), { mode: 0o600, flag: 'wx' });
  try {
    linkSync(temp, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    rmSync(temp, { force: true });
  }
  return readSecret(path);
}

function readSecret(path: string): Buffer {
  const text = readFileSync(path, 'utf8').trim();
  if (!/^[0-9a-f]{64}$/.test(text)) throw new Error(`${path} is not a signing key (64 hex digits)`);
  return Buffer.from(text, 'hex');
}
