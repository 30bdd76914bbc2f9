/**
 * Values as the two databases hand them back. JSON columns come back as JSON text on both (db.ts
 * keeps pg from parsing jsonb, so a stored JSON string is never mistaken for JSON text and parsed a
 * second time); timestamps are Dates on PostgreSQL (timestamptz) and ISO text on SQLite.
 */

export const now = () => new Date().toISOString();

export function json(text: string): unknown {
  return JSON.parse(text);
}

export function iso(value: Date | string | null): string | null {
  if (value === null) return null;
  return value instanceof Date ? value.toISOString() : value;
}
