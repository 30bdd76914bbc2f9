/**
 * Values as the two databases hand them back: JSON columns are parsed on PostgreSQL (jsonb) and text
 * on SQLite; timestamps are Dates on PostgreSQL (timestamptz) and ISO text on SQLite.
 */

export const now = () => new Date().toISOString();

export function json(value: unknown): unknown {
  return typeof value === 'string' ? JSON.parse(value) : value;
}

export function iso(value: Date | string | null): string | null {
  if (value === null) return null;
  return value instanceof Date ? value.toISOString() : value;
}
