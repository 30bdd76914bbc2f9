import { createHmac } from 'node:crypto';

/**
 * How a callback is signed (README, "Webhooks"): `X-Warden-Signature: sha256=<hex>` where hex is
 * HMAC-SHA256 under the tenant's secret over `<timestamp>.<body>`, and `X-Warden-Timestamp` is that
 * timestamp in Unix seconds. Signing the timestamp lets a receiver refuse replays of old deliveries.
 */
export const SIGNATURE_HEADER = 'x-warden-signature';
export const TIMESTAMP_HEADER = 'x-warden-timestamp';

export function signature(secret: string, timestamp: number, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}
