import type { Kysely } from 'kysely';
import type { WebhooksConfig } from '../config/webhooks.js';
import type { Database } from '../store/schema.js';
import { endHook, recordAttempt, startAttempt, tenantSecret, type HookKind } from '../store/webhooks.js';
import { finalView } from './payload.js';
import { post, type PostOutcome } from './post.js';
import { SIGNATURE_HEADER, signature, TIMESTAMP_HEADER } from './signature.js';
import {
  CallbackRefused,
  checkCallbackUrl,
  systemResolver,
  type Resolver,
  type TargetPolicy,
} from './target.js';

/**
 * One delivery attempt of a callback: takes the next attempt number in the store, checks the URL
 * again (DNS may answer differently than at submission), posts the resource's final view signed
 * with the tenant's current secret, and records what came of it. `retry` asks for another attempt
 * later (BullMQ's backoff); a refused URL, a vanished resource or the last attempt end it for good.
 */

export type AttemptResult = 'delivered' | 'failed' | 'retry' | 'skipped';

export interface DeliveryContext {
  db: Kysely<Database>;
  config: WebhooksConfig;
  policy: TargetPolicy;
  resolve?: Resolver;
}

export async function attemptDelivery(
  ctx: DeliveryContext,
  kind: HookKind,
  resourceId: string,
): Promise<AttemptResult> {
  const { db, config } = ctx;
  const hook = await startAttempt(db, kind, resourceId);
  if (!hook) return 'skipped'; // delivered or failed already (a redelivered job)
  const attempt = hook.attempts;
  const end = async (outcome: PostOutcome, final?: 'failed'): Promise<AttemptResult> => {
    await recordAttempt(db, kind, resourceId, { attempt, ...outcome });
    const ok = outcome.statusCode !== null && outcome.statusCode >= 200 && outcome.statusCode < 300;
    const result = ok ? 'delivered' : (final ?? (attempt >= config.attempts ? 'failed' : 'retry'));
    if (result !== 'retry') await endHook(db, kind, resourceId, result);
    return result;
  };

  let body;
  try {
    body = await finalView(db, kind, resourceId);
  } catch (err) {
    // The store is away (or the row unreadable): this attempt failed, a later one may not.
    return end({
      statusCode: null,
      error: `cannot read the ${kind}: ${(err as Error).message}`,
      durationMs: 0,
    });
  }
  if (!body) return end({ statusCode: null, error: `the ${kind} is gone`, durationMs: 0 }, 'failed');
  let target;
  try {
    target = await checkCallbackUrl(hook.url, ctx.policy, ctx.resolve ?? systemResolver);
  } catch (err) {
    const outcome = { statusCode: null, error: (err as Error).message, durationMs: 0 };
    return end(outcome, err instanceof CallbackRefused ? 'failed' : undefined);
  }
  const { secret } = await tenantSecret(db, hook.tenant);
  const text = JSON.stringify(body);
  const timestamp = Math.floor(Date.now() / 1000);
  const outcome = await post(target, text, {
    timeoutMs: config.timeoutMs,
    maxResponseBytes: config.maxResponseBytes,
    headers: {
      'user-agent': 'Warden-Webhooks/1',
      'x-warden-event': `${kind}.finished`,
      'x-warden-delivery': `${kind}_${resourceId}`,
      'x-warden-attempt': String(attempt),
      [TIMESTAMP_HEADER]: String(timestamp),
      [SIGNATURE_HEADER]: signature(secret, timestamp, text),
    },
  });
  return end(outcome);
}
