import { z } from 'zod';

/**
 * Where job artifacts are kept (SPEC §7): a local directory by default, any S3-compatible store
 * when `s3` is set. How long a signed URL lives is `jobs.artifacts.urlTtlSeconds`.
 */
export const artifactsConfigSchema = z
  .object({
    /** Local store: the directory. Default `<dataDir>/artifacts`. */
    dir: z.string().min(1).optional(),
    /**
     * Local store: the HMAC key signing download URLs (at least 32 characters). Unset: a random key
     * is generated once into `<dataDir>/artifact-signing.key` (mode 0600), which every API process
     * of this host shares; API processes on several hosts need this set to one value.
     */
    signingSecret: z.string().min(32, 'at least 32 characters').optional(),
    /** S3-compatible store; the URLs are then the store's own presigned URLs. */
    s3: z
      .object({
        /** e.g. `https://<account>.r2.cloudflarestorage.com`; unset: AWS's endpoint for `region`. */
        endpoint: z.string().url().optional(),
        /** The store's region (`auto` for Cloudflare R2). */
        region: z.string().min(1).default('us-east-1'),
        /** The bucket artifacts go to, under `jobs/<job id>/`; it must exist. */
        bucket: z.string().min(1),
        /** Unset: the SDK's default chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profiles, roles). */
        accessKeyId: z.string().min(1).optional(),
        secretAccessKey: z.string().min(1).optional(),
        /** `true` for most self-hosted stores (MinIO, s3rver): `endpoint/bucket/key` URLs. */
        forcePathStyle: z.boolean().default(false),
      })
      .strict()
      .refine((s) => (s.accessKeyId === undefined) === (s.secretAccessKey === undefined), {
        message: 'accessKeyId and secretAccessKey go together',
        path: ['secretAccessKey'],
      })
      .optional(),
  })
  .strict();

export type ArtifactsConfig = z.infer<typeof artifactsConfigSchema>;
