/**
 * The SQL types of the columns a merge reads (see merge/expression-types.ts): the merge must
 * know that pg's '10' from a BIGINT column sorts after '9', while '10' from a TEXT column sorts
 * before it, and that sum(integer) / count(*) divides integers on PostgreSQL. Looked up once
 * per table with knex's columnInfo() on one node (every shard holds the same schema), then
 * cached for the kit's lifetime.
 */
import type { Knex } from 'knex';
import { withScope } from '../access/call-scope.js';
import { type SqlType, sqlTypeOf } from './merge/expression-types.js';

/** The type of a column of the query's tables, qualified or not ('other' when unknown). */
export type ColumnTypeLookup = (table: string | undefined, column: string) => SqlType;

/** How the merge learns the types of a query's columns. */
export interface ColumnClassifier {
  lookup(tables: readonly { name: string; qualifier: string }[]): Promise<ColumnTypeLookup>;
  /** A table's column names, in the table's order. */
  columnNames(table: string): Promise<string[]>;
}

export class ColumnTypes implements ColumnClassifier {
  private readonly tables = new Map<string, Promise<Map<string, SqlType>>>();

  constructor(private readonly schemaSource: Knex) {}

  async lookup(tables: readonly { name: string; qualifier: string }[]): Promise<ColumnTypeLookup> {
    const columns = await Promise.all(tables.map((table) => this.columnsOf(table.name)));
    return (qualifier, column) => {
      if (qualifier !== undefined) {
        const index = tables.findIndex((table) => table.qualifier === qualifier || table.name === qualifier);
        return columns[index]?.get(column) ?? 'other';
      }
      for (const table of columns) {
        const found = table.get(column);
        if (found) return found;
      }
      return 'other';
    };
  }

  async columnNames(table: string): Promise<string[]> {
    return [...(await this.columnsOf(table)).keys()];
  }

  private columnsOf(table: string): Promise<Map<string, SqlType>> {
    let columns = this.tables.get(table);
    if (!columns) {
      columns = withScope({ priority: 'critical', purpose: 'maintenance' }, () => this.schemaSource(table).columnInfo()).then(
        (info) => new Map(Object.entries(info).map(([name, column]) => [name, sqlTypeOf(column.type)])),
      );
      // A failed lookup is not cached: the next query tries again.
      columns.catch(() => this.tables.delete(table));
      this.tables.set(table, columns);
    }
    return columns;
  }
}
