/**
 * PostgreSQL to PostgreSQL, rows copied as they are (a rebalance): the rows of some shard-key
 * values go from one primary's `COPY (SELECT ...) TO STDOUT` straight into another's `COPY ...
 * FROM STDIN`, the bytes piped through Node without a row parsed, typed or rendered again. Text
 * format keeps every value exactly as the server prints it (timestamps to the microsecond,
 * bytea, arrays, json).
 *
 * COPY cannot skip rows that exist: when the target holds one already (dual-written meanwhile:
 * unique violation, 23505) it stores nothing of the batch, and the caller copies that batch the
 * careful way (insert-if-absent), which leaves the newer row alone. The source's COPY is then
 * read to its end and dropped, so that its connection goes back to the pool in a clean state.
 */
import type { Readable, Writable } from 'node:stream';
import { pipeToEnd } from '../util/pipe-to-end.js';
import type { Knex } from 'knex';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { driverCodeOf } from '../errors.js';
import { onGuardedConnection } from '../knex/guarded-client.js';

/**
 * Streams the rows of `keys` (values of `shardKey`) of `table` from `source` into the same table
 * on `target`; resolves with the rows the target took, or rejects (a row already there:
 * isCopyConflict).
 */
export type StreamRows = (source: Knex, target: Knex, table: string, shardKey: string, keys: readonly unknown[]) => Promise<number>;

const UNIQUE_VIOLATION = '23505';

/** The target already held one of the rows: nothing of the batch was stored. */
export function isCopyConflict(error: unknown): boolean {
  return driverCodeOf(error) === UNIQUE_VIOLATION;
}

export const streamRowsByCopy: StreamRows = async (source, target, table, shardKey, keys) => {
  const columns = await copyableColumns(source, table);
  // COPY takes no parameters: knex writes the keys as one array literal, which the server reads
  // as an array of the key column's own type, so the key's index finds them.
  const out = source.raw('COPY (SELECT ?? FROM ?? WHERE ?? = ANY(?)) TO STDOUT', [columns, table, shardKey, keys.map(String)]).toQuery();
  const into = target.raw('COPY ?? (??) FROM STDIN', [table, columns]).toQuery();
  return onGuardedConnection(source, out, (sourceConnection) =>
    onGuardedConnection(target, into, async (targetConnection) => {
      const reading = (sourceConnection as { query(submittable: unknown): Readable }).query(copyTo(out));
      const writing = (targetConnection as { query(submittable: unknown): Writable & { rowCount?: number } }).query(copyFrom(into));
      await pipeToEnd(reading, writing);
      return Number(writing.rowCount ?? 0);
    }),
  );
};

/** The table's columns a COPY may name, in table order (generated columns take no values). */
async function copyableColumns(db: Knex, table: string): Promise<string[]> {
  const result = (await db.raw(
    `select attname as name from pg_attribute
      where attrelid = to_regclass(quote_ident(?)) and attnum > 0 and not attisdropped and attgenerated = ''
      order by attnum`,
    [table],
  )) as { rows: { name: string }[] };
  return result.rows.map((row) => row.name);
}
