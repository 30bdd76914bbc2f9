import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SDK_TYPES_PATH, sdkTypesSource } from '../../scripts/gen-sdk-types.js';

/**
 * The SDK's types are generated from the server's OpenAPI document: a route whose schema changed
 * (or a new route) without `npm run gen:sdk` fails here, so the committed types never drift.
 */
describe('SDK types', () => {
  it('src/sdk/openapi.ts is what `npm run gen:sdk` generates from the current routes', async () => {
    const committed = readFileSync(SDK_TYPES_PATH, 'utf8');
    const fresh = await sdkTypesSource();
    expect(committed === fresh, 'src/sdk/openapi.ts is stale: run `npm run gen:sdk` and commit it').toBe(
      true,
    );
  });
});
