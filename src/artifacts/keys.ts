/**
 * Object keys (`jobs/<jobId>/<relative path>`) are relative paths of clean segments, whatever store
 * they go to: the local store maps them onto its directory, so a key must never climb out of it.
 */

export class InvalidKeyError extends Error {}

const MAX_KEY_BYTES = 1024; // S3's own limit
const MAX_SEGMENT_BYTES = 255; // NAME_MAX

/** The key's segments; throws InvalidKeyError for an empty, absolute, `..`, NUL or control-character key. */
export function keySegments(key: string): string[] {
  if (typeof key !== 'string' || key.length === 0) throw new InvalidKeyError('empty key');
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) throw new InvalidKeyError('key too long');
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f\\]/.test(key)) throw new InvalidKeyError('control character or backslash in key');
  if (key.startsWith('/')) throw new InvalidKeyError('absolute key');
  const segments = key.split('/');
  for (const s of segments) {
    if (s === '' || s === '.' || s === '..') throw new InvalidKeyError(`bad segment ${JSON.stringify(s)}`);
    if (Buffer.byteLength(s) > MAX_SEGMENT_BYTES) throw new InvalidKeyError('key segment too long');
  }
  return segments;
}

export function validateKey(key: string): string {
  keySegments(key);
  return key;
}

/**
 * A prefix names a whole "directory" of keys: `jobs/1` must not also take `jobs/10/…`, so it always
 * ends with a slash.
 */
export function normalisePrefix(prefix: string): string {
  const trimmed = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  keySegments(trimmed);
  return `${trimmed}/`;
}
