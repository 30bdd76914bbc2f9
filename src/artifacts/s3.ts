import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { ArtifactsConfig } from '../config/artifacts.js';
import type { ArtifactStore } from './index.js';
import { keySegments, normalisePrefix, validateKey } from './keys.js';

type S3Config = NonNullable<ArtifactsConfig['s3']>;

/** SigV4 presigned URLs live at most 7 days. */
const MAX_PRESIGN_SECONDS = 7 * 24 * 3600;
/** Streams go up in parts of this size, two at a time: a large artifact is never held whole. */
const PART_BYTES = 8 * 1024 * 1024;

/** `report v2.pdf` → `attachment; filename="report v2.pdf"; filename*=UTF-8''report%20v2.pdf`. */
export function contentDisposition(key: string): string {
  const name = keySegments(key).at(-1) ?? 'artifact';
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

export async function createS3Store(config: S3Config, logger: Logger): Promise<ArtifactStore> {
  const client = new S3Client({
    region: config.region,
    endpoint: config.endpoint,
    forcePathStyle: config.forcePathStyle,
    credentials:
      config.accessKeyId && config.secretAccessKey
        ? { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey }
        : undefined,
    // The SDK's default (CRC32 trailers, aws-chunked bodies) is AWS-only; R2, MinIO and the like
    // take plain Content-MD5-free uploads.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const Bucket = config.bucket;
  // A wrong bucket or credentials show at start-up; a store that is down for a moment must not
  // keep the service from starting, so this only warns.
  await client.send(new HeadBucketCommand({ Bucket })).catch((err: Error) => {
    logger.warn(
      { bucket: Bucket, endpoint: config.endpoint, err: err.message },
      'artifact bucket not reachable',
    );
  });

  return {
    kind: 's3',

    async put(key, body, size) {
      validateKey(key);
      if (Buffer.isBuffer(body)) {
        await client.send(new PutObjectCommand({ Bucket, Key: key, Body: body, ContentLength: size }));
        return;
      }
      // Counted on the way through, so a stream that is not the announced size is refused as the
      // local store refuses it (and a longer one stops at the limit).
      let written = 0;
      const counted = Readable.from(
        (async function* () {
          for await (const data of body as AsyncIterable<Buffer | string>) {
            const chunk = Buffer.isBuffer(data) ? data : Buffer.from(data);
            written += chunk.length;
            if (written > size) throw new Error(`artifact ${key}: more than ${size} bytes`);
            yield chunk;
          }
        })(),
      );
      const upload = new Upload({
        client,
        params: { Bucket, Key: key, Body: counted },
        partSize: PART_BYTES,
        queueSize: 2,
        leavePartsOnError: false,
      });
      await upload.done();
      if (written !== size) {
        await client.send(new DeleteObjectCommand({ Bucket, Key: key }));
        throw new Error(`artifact ${key}: expected ${size} bytes, got ${written}`);
      }
    },

    async signedUrl(key, expiresAt) {
      validateKey(key);
      const seconds = Math.ceil((expiresAt.getTime() - Date.now()) / 1000);
      const expiresIn = Math.min(Math.max(seconds, 1), MAX_PRESIGN_SECONDS);
      const command = new GetObjectCommand({
        Bucket,
        Key: key,
        ResponseContentDisposition: contentDisposition(key),
      });
      return getSignedUrl(client, command, { expiresIn });
    },

    async deletePrefix(prefix) {
      const Prefix = normalisePrefix(prefix);
      let ContinuationToken: string | undefined;
      do {
        const page = await client.send(new ListObjectsV2Command({ Bucket, Prefix, ContinuationToken }));
        const Objects = (page.Contents ?? []).flatMap((o) => (o.Key ? [{ Key: o.Key }] : []));
        if (Objects.length > 0) {
          await client.send(new DeleteObjectsCommand({ Bucket, Delete: { Objects, Quiet: true } }));
        }
        ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (ContinuationToken);
    },

    async close() {
      client.destroy();
    },
  };
}
