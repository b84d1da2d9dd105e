/**
 * The shard-key column of every sharded table, with how the database compares it (see
 * hashing/key-canonical.ts): declared in the config (`keyType`), or learned on a table's first
 * query from the catalog of a primary (the global shard's first, then the others, each within
 * the call's deadline) and kept for the kit's lifetime. A table not found anywhere is not
 * remembered (it may be created later); its keys route by the type-free rules meanwhile.
 *
 * A case-insensitive key column is refused: no hash can send 'A' and 'a' to one shard while
 * keeping them apart elsewhere, so a key would silently miss its row.
 */
import { withScope } from '../access/call-scope.js';
import type { ShardedTableConfig } from '../config/config-types.js';
import { ConfigError } from '../errors.js';
import { type KeyColumn, keyTypeOfColumn } from '../hashing/key-canonical.js';
import type { NodeHandle } from '../topology/topology.js';

const LOOKUP_TURN_MS = 1000;

export class KeyTypes {
  private readonly known = new Map<string, KeyColumn | ConfigError>();
  private readonly learning = new Map<string, Promise<void>>();

  constructor(
    private readonly tables: ReadonlyMap<string, ShardedTableConfig>,
    /** Primaries to ask, in order. */
    private readonly primaries: () => readonly NodeHandle[],
  ) {
    for (const [table, { shardKey, keyType }] of tables) {
      if (keyType) this.known.set(table, { table, column: shardKey, type: keyType });
    }
  }

  /** The key column of `table` if known; throws the refusal of a case-insensitive one. */
  of(table: string): KeyColumn | undefined {
    const known = this.known.get(table);
    if (known instanceof ConfigError) throw known;
    return known;
  }

  /** Learns `table`'s key column unless known; resolves once known or found missing. */
  /** Nothing is left to learn about `table` (its key column is known, or it has none). */
  settled(table: string): boolean {
    return this.known.has(table) || !this.tables.has(table);
  }

  learn(table: string, deadline: number): Promise<void> {
    if (this.known.has(table) || !this.tables.has(table)) return Promise.resolve();
    let learning = this.learning.get(table);
    if (!learning) {
      learning = this.read(table, deadline).finally(() => this.learning.delete(table));
      this.learning.set(table, learning);
    }
    return learning;
  }

  private async read(table: string, deadline: number): Promise<void> {
    const column = this.tables.get(table)!.shardKey;
    let firstError: unknown;
    for (const node of this.primaries()) {
      try {
        // Each node gets a short turn, so that one that is down leaves time to ask the next.
        const turn = Math.min(deadline, performance.now() + LOOKUP_TURN_MS);
        const found = await withScope({ priority: 'critical', deadline: turn, purpose: 'maintenance' }, () => node.dialect.keyColumn(node.knex, table, column));
        if (!found) return;
        if (found.caseInsensitive) {
          this.known.set(
            table,
            new ConfigError([
              {
                path: `tables.${table}.shardKey`,
                message:
                  `column ${table}.${column} compares case-insensitively (${found.collation ?? found.type}), so keys differing only in case ` +
                  "would hash to different shards: give it a binary or case-sensitive collation, or declare keyType: 'text' if keys never differ only in case",
              },
            ]),
          );
          return;
        }
        this.known.set(table, { table, column, type: keyTypeOfColumn(found.type), ...(found.padded ? { padded: true } : {}) });
        return;
      } catch (error) {
        firstError ??= error;
      }
    }
    throw firstError;
  }
}
