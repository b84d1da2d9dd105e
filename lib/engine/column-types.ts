/**
 * How the values of a column compare (see merge/compare-values.ts), from the table's schema:
 * the merge must know that pg's '10' from a BIGINT column sorts after '9', while '10' from a
 * TEXT column sorts before it. Looked up once per table with knex's columnInfo() on one node
 * (every shard holds the same schema), then cached for the kit's lifetime.
 */
import type { Knex } from 'knex';
import { withScope } from '../access/call-scope.js';
import type { ValueClass } from './merge/compare-values.js';

const EXACT = /^(tiny|small|medium|big)?int|integer|serial|numeric|decimal|money|bit$/i;
const APPROXIMATE = /real|double|float/i;
const AGGREGATE = /^(count|sum|avg|min|max)\((.*)\)$/i;

export function classOfType(type: string): ValueClass {
  if (EXACT.test(type)) return 'exact';
  if (APPROXIMATE.test(type)) return 'approximate';
  return 'other';
}

/** How the merge learns how a column's values compare. */
export interface ColumnClassifier {
  classifier(tables: readonly { name: string; qualifier: string }[]): Promise<(source: string) => ValueClass>;
}

export class ColumnTypes implements ColumnClassifier {
  private readonly tables = new Map<string, Promise<Map<string, ValueClass>>>();

  constructor(private readonly schemaSource: Knex) {}

  /** A classifier for column expressions (`amount`, `orders.amount`, `sum(amount)`) of these tables. */
  async classifier(tables: readonly { name: string; qualifier: string }[]): Promise<(source: string) => ValueClass> {
    const columns = await Promise.all(tables.map((table) => this.columnsOf(table.name)));
    const classify = (source: string): ValueClass => {
      const aggregate = AGGREGATE.exec(source.trim());
      if (aggregate) return aggregate[1]!.toLowerCase() === 'count' ? 'exact' : classify(aggregate[2]!);
      const dot = source.lastIndexOf('.');
      const column = source.slice(dot + 1);
      if (dot >= 0) {
        const qualifier = source.slice(0, dot);
        const index = tables.findIndex((table) => table.qualifier === qualifier || table.name === qualifier);
        return columns[index]?.get(column) ?? 'other';
      }
      for (const table of columns) {
        const found = table.get(column);
        if (found) return found;
      }
      return 'other';
    };
    return classify;
  }

  private columnsOf(table: string): Promise<Map<string, ValueClass>> {
    let columns = this.tables.get(table);
    if (!columns) {
      columns = withScope({ priority: 'critical', purpose: 'maintenance' }, () => this.schemaSource(table).columnInfo()).then(
        (info) => new Map(Object.entries(info).map(([name, column]) => [name, classOfType(column.type)])),
      );
      // A failed lookup is not cached: the next query tries again.
      columns.catch(() => this.tables.delete(table));
      this.tables.set(table, columns);
    }
    return columns;
  }
}
