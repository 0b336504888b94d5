import type { Compilable, CompiledQuery, QueryResult } from 'kysely';
import { relaxed, type DB } from './dialect.ts';

/**
 * A query of fixed shape built and compiled by Kysely once, then run with new parameter values:
 * the hottest lookups (a manifest by tag, a user by name…) skip Kysely's query building and
 * compiling on every request, and the driver reuses the statement it prepared for the SQL text.
 *
 * `build` receives placeholders in place of its arguments and must pass each of them, unchanged,
 * as a value of the query (not inside an expression such as a LIKE pattern, and without branching
 * on it); compiling checks that every placeholder became a parameter. With `relaxed`, a write
 * is a relaxed commit (see {@link relaxed}).
 */
export class PreparedQuery<A extends unknown[], O> {
  private compiled: { sql: string; query: CompiledQuery['query']; queryId: CompiledQuery['queryId']; slots: number[]; constants: unknown[] } | undefined;

  constructor(private readonly db: DB, private readonly build: (...args: A) => Compilable<O>, private readonly options: { relaxed?: boolean } = {}) {}

  /** All rows for `args`. */
  async all(...args: A): Promise<O[]> {
    return (await this.execute(this.db, args)).rows;
  }

  /** The first row for `args`, or undefined. */
  async first(...args: A): Promise<O | undefined> {
    return (await this.execute(this.db, args)).rows[0];
  }

  /** The first row for `args`, read on `on` (a transaction, or the database when undefined). */
  async firstOn(on: DB | undefined, ...args: A): Promise<O | undefined> {
    return (await this.execute(on ?? this.db, args)).rows[0];
  }

  /** Runs an insert, update or delete for `args` on `on` (a transaction, or the database); the rows it changed. */
  async run(on: DB | undefined, ...args: A): Promise<number> {
    return Number((await this.execute(on ?? this.db, args)).numAffectedRows ?? 0);
  }

  private execute(on: DB, args: A): Promise<QueryResult<O>> {
    const c = (this.compiled ??= this.compile());
    const parameters = new Array<unknown>(c.slots.length);
    for (let i = 0; i < c.slots.length; i++) {
      const slot = c.slots[i]!;
      parameters[i] = slot >= 0 ? args[slot] : c.constants[i];
    }
    return on.executeQuery<O>({ sql: c.sql, query: c.query, queryId: c.queryId, parameters });
  }

  private compile() {
    const arity = this.build.length;
    const marks = Array.from({ length: arity }, (_, i) => `\u0000berth-parameter:${i}`);
    const built = this.build(...(marks as A)).compile();
    const compiled = this.options.relaxed ? relaxed(built) : built;
    const slots = compiled.parameters.map((p) => (typeof p === 'string' ? marks.indexOf(p) : -1));
    for (let i = 0; i < arity; i++) {
      if (!slots.includes(i)) throw new Error(`argument ${i} of a prepared query is not passed as a plain value (${compiled.sql})`);
    }
    return { sql: compiled.sql, query: compiled.query, queryId: compiled.queryId, slots, constants: [...compiled.parameters] };
  }
}
