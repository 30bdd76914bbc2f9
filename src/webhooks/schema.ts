import { z } from 'zod';

/** The `callback_url` of POST /execute, /tasks and /jobs; checked further (and resolved) by target.ts. */
export const callbackUrl = z
  .string()
  .min(1)
  .max(2048)
  .optional()
  .describe(
    'http(s) URL that receives the final result (the JSON GET answers for this resource) as a signed POST once it is final; see README "Webhooks". Must resolve to public addresses unless the operator allows more (webhooks.allowPrivate, webhooks.allowlist).',
  );
