import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { isLocalStore, type ArtifactStore } from '../../artifacts/index.js';
import { InvalidKeyError, validateKey } from '../../artifacts/keys.js';
import { DOWNLOAD_ROUTE_PREFIX } from '../../artifacts/local.js';
import { contentDisposition } from '../../artifacts/s3.js';
import type { AppDeps } from '../deps.js';
import { ApiError } from '../errors.js';
import { errorBody } from '../schemas.js';

const forbidden = (message: string) => new ApiError(403, 'forbidden', message, null);

/** The key as signed: the raw path's segments, each percent-decoded (a `%2F` stays inside its segment). */
function keyOf(url: string): string {
  const path = url.split('?', 1)[0]!.slice(DOWNLOAD_ROUTE_PREFIX.length);
  try {
    return validateKey(
      path
        .split('/')
        .map((s) => decodeURIComponent(s))
        .join('/'),
    );
  } catch (err) {
    if (err instanceof URIError || err instanceof InvalidKeyError) throw forbidden('invalid artifact link');
    throw err;
  }
}

/**
 * Downloads of the local artifact store, by signed URL only (S3 URLs point at the store itself).
 * The signature and expiry are checked before anything touches the disk; a failed check is a 403
 * that says nothing about whether the file exists.
 */
export const artifactRoutes =
  (deps: Pick<AppDeps, 'logger'>, store: ArtifactStore): FastifyPluginAsyncZod =>
  async (app) => {
    if (!isLocalStore(store)) return;
    app.get(
      `${DOWNLOAD_ROUTE_PREFIX}*`,
      {
        // No key: the signed URL is the capability (issued only to the job's tenant, GET /jobs/{id}/artifacts).
        config: { scope: 'public' },
        schema: {
          summary: 'Download an artifact by the signed URL GET /jobs/{id}/artifacts gave',
          // Loose on purpose: a mangled link is a 403 like a forged one, not a 400.
          querystring: z.object({ expires: z.string().optional(), sig: z.string().optional() }),
          response: {
            200: z.unknown().describe('The artifact bytes (application/octet-stream).'),
            403: errorBody,
            404: errorBody,
            500: errorBody,
          },
        },
      },
      async (req, reply) => {
        const key = keyOf(req.url);
        const { expires, sig } = req.query;
        if (!expires || !/^\d{1,12}$/.test(expires) || !sig) throw forbidden('invalid artifact link');
        const check = store.verify(key, Number(expires), sig);
        if (check === 'invalid') throw forbidden('invalid artifact link');
        if (check === 'expired') throw forbidden('this artifact link has expired; list the artifacts again');
        const object = await store.openObject(key);
        if (!object) throw new ApiError(404, 'not_found', 'this artifact no longer exists', null);
        deps.logger.debug({ key, size: object.size }, 'artifact download');
        return reply
          .header('content-type', 'application/octet-stream')
          .header('content-length', String(object.size))
          .header('content-disposition', contentDisposition(key))
          .header('x-content-type-options', 'nosniff')
          .header('cache-control', 'private, no-store')
          .send(object.stream);
      },
    );
  };
