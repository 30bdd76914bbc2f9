import { readFile } from 'node:fs/promises';
import { transform } from 'esbuild';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';

/**
 * The dashboard at /ui: a static page, one script and one stylesheet, public (they hold no data;
 * every call the page makes carries the user's API key). The script is written in TypeScript and
 * transpiled here by esbuild, once per process, from src/ui or the copy the build puts in dist/ui:
 * one path whether the service runs from source or from dist, and no built file to keep in sync.
 */

/** No inline script or style, nothing from elsewhere: injected markup could not run even if it got in. */
export const UI_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "form-action 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

interface Asset {
  type: string;
  body: string;
}

async function loadAssets(dir: URL): Promise<Record<string, Asset>> {
  const read = (name: string) => readFile(new URL(name, dir), 'utf8');
  const [html, css, source] = await Promise.all([read('index.html'), read('app.css'), read('app.ts')]);
  const script = await transform(source, { loader: 'ts', format: 'esm', target: 'es2022' });
  return {
    page: { type: 'text/html; charset=utf-8', body: html },
    'app.css': { type: 'text/css; charset=utf-8', body: css },
    'app.js': { type: 'text/javascript; charset=utf-8', body: script.code },
  };
}

/** src/ui when running from source, dist/ui (copied by the build) when running from dist. */
const UI_DIR = new URL('../../ui/', import.meta.url);

/** Read and transpiled once per process (tests build many apps), not once per app. */
let loaded: Promise<Record<string, Asset>> | undefined;

export const uiRoutes = (): FastifyPluginAsync => async (app) => {
  if (!loaded) {
    loaded = loadAssets(UI_DIR);
    // A failed read is not kept: the next app tries again.
    loaded.catch(() => (loaded = undefined));
  }
  const assets = await loaded;
  const send = (reply: FastifyReply, asset: Asset) =>
    reply
      .type(asset.type)
      .header('content-security-policy', UI_CSP)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('x-frame-options', 'DENY')
      .header('cache-control', 'no-cache')
      .send(asset.body);
  // Public: the key is typed into the page, so the page must load without one.
  const options = { config: { scope: 'public' as const }, schema: { hide: true } };
  app.get('/ui', options, (_req, reply) => send(reply, assets.page!));
  app.get('/ui/', options, (_req, reply) => send(reply, assets.page!));
  for (const name of ['app.js', 'app.css'])
    app.get(`/ui/${name}`, options, (_req, reply) => send(reply, assets[name]!));
};
