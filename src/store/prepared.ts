import type { Compilable, CompiledQuery, Kysely, QueryResult } from 'kysely';
import type { Database } from './schema.js';

/** Where a value goes in a prepared query: compiled as a parameter, filled in at each run. */
class Hole {
  constructor(readonly name: string) {}
}

/** Puts a hole named `name` where a value of the query goes (typed as that value). */
export type HoleFor<V> = <K extends keyof V & string>(name: K) => V[K];

/**
 * A query built and compiled once per database, then run with the values of its holes. Kysely builds
 * and compiles every query anew, which for a small hot statement (a few per execution) costs about as
 * much again as the database's own work on it. The values stay parameters: nothing is spliced into
 * the SQL text.
 */
export function prepared<V extends Record<string, unknown>, R>(
  build: (db: Kysely<Database>, hole: HoleFor<V>) => Compilable<R>,
): (db: Kysely<Database>, values: V) => Promise<QueryResult<R>> {
  const compiled = new WeakMap<Kysely<Database>, CompiledQuery<R>>();
  const hole: HoleFor<V> = (name) => new Hole(name) as never;
  return (db, values) => {
    let query = compiled.get(db);
    if (!query) {
      query = build(db, hole).compile();
      compiled.set(db, query);
    }
    const parameters = query.parameters.map((p) => (p instanceof Hole ? values[p.name] : p));
    return db.executeQuery<R>({ ...query, parameters });
  };
}
