/**
 * Sizes of strings as they will be sent and stored: JSON-encoded UTF-8. A control character costs
 * up to 6 bytes there (`\u0001`), so a cap on characters is no cap on the answer.
 */

/** Bytes `JSON.stringify` spends on the UTF-16 unit at `i` (a surrogate pair counts on its first unit). */
function unitCost(s: string, i: number): number {
  const c = s.charCodeAt(i);
  if (c < 0x20) return c === 8 || c === 9 || c === 10 || c === 12 || c === 13 ? 2 : 6;
  if (c === 0x22 || c === 0x5c) return 2;
  if (c < 0x80) return 1;
  if (c < 0x800) return 2;
  if (c >= 0xd800 && c <= 0xdbff) {
    const next = s.charCodeAt(i + 1);
    return next >= 0xdc00 && next <= 0xdfff ? 4 : 6;
  }
  if (c >= 0xdc00 && c <= 0xdfff) {
    const prev = s.charCodeAt(i - 1);
    return prev >= 0xd800 && prev <= 0xdbff ? 0 : 6; // a pair's second half was paid with the first
  }
  return 3;
}

/** Bytes of `JSON.stringify(s)` in UTF-8, quotes included. */
export function jsonBytes(s: string): number {
  let total = 2;
  for (let i = 0; i < s.length; i++) total += unitCost(s, i);
  return total;
}

/** The longest prefix of `s` whose JSON encoding fits in `maxBytes` (never splitting a surrogate pair). */
export function fitJson(s: string, maxBytes: number): { text: string; cut: boolean } {
  let total = 2;
  for (let i = 0; i < s.length; i++) {
    const cost = unitCost(s, i);
    const pairStart = cost === 4;
    if (total + cost > maxBytes) return { text: s.slice(0, i), cut: true };
    total += cost;
    if (pairStart) i++;
  }
  return { text: s, cut: false };
}

/**
 * Cuts two outputs (stdout, stderr) to share `maxBytes` of JSON: each keeps at least half if it needs
 * it, and what one leaves unused goes to the other.
 */
export function fitPair(
  first: string,
  second: string,
  maxBytes: number,
): { first: string; second: string; cut: boolean } {
  const a = jsonBytes(first);
  const b = jsonBytes(second);
  if (a + b <= maxBytes) return { first, second, cut: false };
  const half = Math.floor(maxBytes / 2);
  const forA = b < half ? maxBytes - b : a < half ? a : half;
  const forB = maxBytes - Math.min(a, forA);
  const x = fitJson(first, forA);
  const y = fitJson(second, forB);
  return { first: x.text, second: y.text, cut: true };
}
