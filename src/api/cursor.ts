import { ApiError } from './errors.js';

/** Where a newest-first page ended: the last row's creation time and id (ties broken by id). */
export interface PageCursor {
  createdAt: string;
  id: string;
}

/** Opaque to clients: base64url of `[createdAt, id]`. */
export const encodeCursor = (c: PageCursor): string =>
  Buffer.from(JSON.stringify([c.createdAt, c.id])).toString('base64url');

/** A cursor this server did not give is a 400 naming `cursor`, never a 500. */
export function decodeCursor(text: string): PageCursor {
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as unknown[];
    if (typeof createdAt === 'string' && typeof id === 'string') return { createdAt, id };
  } catch {
    // fall through
  }
  throw new ApiError(400, 'invalid_request', 'cursor: not a cursor this server gave', 'cursor');
}
