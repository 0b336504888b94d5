// Copying metadata rows between two databases of Berth's schema, dialect-neutral: the same Kysely
// queries read SQLite or PostgreSQL and write either.
import { sql, type Kysely } from 'kysely';
import type { TablePlan } from './plan.ts';

/** A row as the database returns it; the schema is the same on both sides, so rows pass through as they are. */
export type Row = Record<string, unknown>;

/** Kysely over tables known only by name at run time (the plan names them, not the types). */
export type AnyDatabase = Kysely<Record<string, Row>>;

/** Rows read and written per statement: far below both databases' limits on bound parameters. */
export const PAGE_ROWS = 500;

/** What copying one table did. */
export interface TableCopy {
  table: string;
  /** Rows in the source. */
  rows: number;
  /** Rows this run inserted; the rest were there already (an earlier, interrupted run). */
  inserted: number;
}

/** The tables of Berth's schema in `db` (Kysely's migration bookkeeping excluded), only those of the current schema on PostgreSQL. */
export async function schemaTables(db: AnyDatabase, dialect: 'sqlite' | 'postgres'): Promise<string[]> {
  const tables = await db.introspection.getTables();
  if (dialect === 'sqlite') return tables.map((t) => t.name);
  const { rows } = await sql<{ schema: string }>`select current_schema() as schema`.execute(db);
  return tables.filter((t) => t.schema === rows[0]?.schema).map((t) => t.name);
}

/** Rows in `table`. */
export async function countRows(db: AnyDatabase, table: string): Promise<number> {
  const row = await db.selectFrom(table).select((eb) => eb.fn.countAll<number | string>().as('n')).executeTakeFirstOrThrow();
  return Number(row['n']);
}

/**
 * Copies every row of a `copy` table in pages ordered by its primary key (each page starts after
 * the last key of the one before, so a page costs the same wherever it is), inserting with
 * on-conflict-do-nothing: a row the target already has — from an interrupted earlier run — is
 * kept, not doubled. `onRows` sees each page's row count as it lands.
 */
export async function copyKeyed(source: AnyDatabase, target: AnyDatabase, plan: TablePlan, onRows: (n: number) => void): Promise<TableCopy> {
  const key = plan.key;
  if (key.length === 0) throw new Error(`table ${plan.table}: a copied table needs its key columns in the plan`);
  let inserted = 0;
  let rows = 0;
  let after: unknown[] | undefined;
  for (;;) {
    let query = source.selectFrom(plan.table).selectAll();
    if (after) {
      const last = after;
      // A row-value comparison: both SQLite (3.15+) and PostgreSQL order tuples lexicographically.
      query = query.where(sql<boolean>`(${sql.join(key.map((k) => sql.ref(k)))}) > (${sql.join(last)})`);
    }
    for (const k of key) query = query.orderBy(k);
    const page = await query.limit(PAGE_ROWS).execute();
    if (page.length === 0) break;
    inserted += await insertPage(target, plan.table, page);
    rows += page.length;
    onRows(page.length);
    const tail = page[page.length - 1]!;
    after = key.map((k) => tail[k]);
    if (page.length < PAGE_ROWS) break;
  }
  return { table: plan.table, rows, inserted };
}

/**
 * Copies a `replace` table (one without a key to recognise a row by): in one target transaction,
 * deletes what an interrupted run may have left and inserts every row again. Such tables are small
 * (robot permissions), so the source is read at once.
 */
export async function copyReplacing(source: AnyDatabase, target: AnyDatabase, plan: TablePlan, onRows: (n: number) => void): Promise<TableCopy> {
  const all = await source.selectFrom(plan.table).selectAll().execute();
  await target.transaction().execute(async (trx) => {
    await trx.deleteFrom(plan.table).execute();
    for (let i = 0; i < all.length; i += PAGE_ROWS) await insertPage(trx, plan.table, all.slice(i, i + PAGE_ROWS));
  });
  onRows(all.length);
  return { table: plan.table, rows: all.length, inserted: all.length };
}

async function insertPage(target: AnyDatabase, table: string, rows: Row[]): Promise<number> {
  const result = await target.insertInto(table).values(rows).onConflict((oc) => oc.doNothing()).executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0);
}

/**
 * PostgreSQL: moves each sequence behind an auto-numbered column (serial or identity) of `tables`
 * past the largest value copied, so the next row the registry creates gets a fresh id instead of
 * colliding with a copied one (rows were inserted with their ids, which sequences do not see).
 * Returns how many sequences it set. SQLite needs nothing: it numbers rows after the largest key.
 */
export async function resetSequences(target: AnyDatabase, tables: readonly string[]): Promise<number> {
  const { rows } = await sql<{ table: string; column: string; sequence: string }>`
    select c.table_name as "table", c.column_name as "column",
           pg_get_serial_sequence(quote_ident(c.table_schema) || '.' || quote_ident(c.table_name), c.column_name) as "sequence"
    from information_schema.columns c
    where c.table_schema = current_schema()
      and pg_get_serial_sequence(quote_ident(c.table_schema) || '.' || quote_ident(c.table_name), c.column_name) is not null`.execute(target);
  let set = 0;
  for (const row of rows) {
    if (!tables.includes(row.table)) continue;
    // is_called false: the next nextval returns exactly max + 1 (1 on an empty table).
    await sql`select setval(${row.sequence}::regclass, coalesce((select max(${sql.ref(row.column)}) from ${sql.table(row.table)}), 0) + 1, false)`.execute(target);
    set++;
  }
  return set;
}
