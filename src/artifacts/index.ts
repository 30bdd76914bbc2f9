import { join } from 'node:path';
import type { Logger } from 'pino';
import type { WardenConfig } from '../config/schema.js';
import { createLocalStore, type LocalArtifactStore } from './local.js';
import { createS3Store } from './s3.js';
import { createSigner, loadOrCreateSecret } from './signing.js';

export { InvalidKeyError, validateKey } from './keys.js';
export type { LocalArtifactStore } from './local.js';

/**
 * Where job artifacts go (SPEC §7): keys look like `jobs/<jobId>/<relative path>`; every method
 * refuses a key that is empty, absolute, or holds `..`, NUL or control characters.
 */
export interface ArtifactStore {
  readonly kind: 'local' | 's3';
  /** Stores `size` bytes under `key`, replacing what was there; a stream is never buffered whole. */
  put(key: string, body: NodeJS.ReadableStream | Buffer, size: number): Promise<void>;
  /** A signed URL that expires at `expiresAt` (absolute for s3, path+query for local: `/artifacts/<key>?expires=…&sig=…`). */
  signedUrl(key: string, expiresAt: Date): Promise<string>;
  /** Removes every key under `prefix/` (a prefix always ends at a `/`: `jobs/1` leaves `jobs/10/…`). */
  deletePrefix(prefix: string): Promise<void>;
  close(): Promise<void>;
}

export function isLocalStore(store: ArtifactStore): store is LocalArtifactStore {
  return store.kind === 'local';
}

export async function openArtifactStore(config: WardenConfig, logger: Logger): Promise<ArtifactStore> {
  const { s3, signingSecret, dir } = config.artifacts;
  if (s3) return createS3Store(s3, logger);
  const secret = signingSecret ?? loadOrCreateSecret(join(config.dataDir, 'artifact-signing.key'));
  return createLocalStore(dir, createSigner(secret));
}
