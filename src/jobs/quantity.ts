/**
 * Kubernetes resource quantities as a job request writes them: bytes as `512Mi`, `1Gi`, `500M`, `1k`
 * or a plain number; CPU as cores (`0.5`, `2`) or millicores (`500m`).
 */

export class QuantityError extends Error {}

const BYTE_SUFFIXES: Record<string, number> = {
  '': 1,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
};

const BYTES_RE = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$/;
const CPU_RE = /^(\d+(?:\.\d+)?)(m)?$/;

/** Bytes, rounded up to a whole byte. */
export function parseBytes(text: string): number {
  const m = BYTES_RE.exec(text.trim());
  if (!m) {
    throw new QuantityError(
      `${JSON.stringify(text)} is not a quantity of bytes: use a number with an optional suffix Ki, Mi, Gi, Ti (powers of 1024) or k, M, G, T (powers of 1000), e.g. "512Mi"`,
    );
  }
  const bytes = Math.ceil(Number(m[1]) * BYTE_SUFFIXES[m[2] ?? '']!);
  if (bytes <= 0) throw new QuantityError(`${JSON.stringify(text)} must be more than zero`);
  if (!Number.isSafeInteger(bytes)) throw new QuantityError(`${JSON.stringify(text)} is too large`);
  return bytes;
}

/** Cores (0.5 = half a core). */
export function parseCpu(text: string): number {
  const m = CPU_RE.exec(text.trim());
  if (!m) {
    throw new QuantityError(
      `${JSON.stringify(text)} is not a CPU quantity: use cores ("0.5", "2") or millicores ("500m")`,
    );
  }
  const cores = Number(m[1]) / (m[2] ? 1000 : 1);
  if (cores <= 0) throw new QuantityError(`${JSON.stringify(text)} must be more than zero`);
  if (cores < 0.01) throw new QuantityError(`${JSON.stringify(text)} is below the minimum of 10m`);
  return cores;
}
