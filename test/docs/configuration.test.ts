import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONFIG_DOCS_PATH, configComments, configDocsSource } from '../../scripts/gen-config-docs.js';

/**
 * docs/configuration.md is generated from the zod schema: a key added, removed or re-described
 * without `npm run docs:config` fails here.
 */
describe('configuration reference', () => {
  it('docs/configuration.md is what `npm run docs:config` generates from the schema', async () => {
    const committed = readFileSync(CONFIG_DOCS_PATH, 'utf8');
    const fresh = await configDocsSource();
    expect(committed === fresh, 'docs/configuration.md is stale: run `npm run docs:config`').toBe(true);
  });

  it('lists every key with its default and explanation, read from the schema and its comments', async () => {
    const doc = await configDocsSource();
    expect(doc).toContain(
      '#### `server.port`\n\ninteger, 0 to 65535 · default `8080` · environment variable `WARDEN_PORT`',
    );
    expect(doc).toContain('#### `jobs.defaults.cpu`\n\nnumber > 0, ≤ 64 · default `1`');
    expect(doc).toContain('default: the number of CPU cores');
    // A comment on a nested key and one on the named schema a section uses are both found.
    expect(configComments().get('jobs.artifacts.urlTtlSeconds')).toBe(
      'How long a signed artifact URL stays valid.',
    );
    expect(configComments().get('sandbox.limits')).toMatch(/^Limits a run gets when the request names none/);
  });
});
