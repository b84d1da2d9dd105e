/** The routing rules the planner's unit tests plan with: users by id, orders by user_id, countries global, on four shards. */
import { HashRing } from '../../lib/hashing/hash-ring.js';
import type { KeyColumn } from '../../lib/hashing/key-canonical.js';
import type { RoutingRules } from '../../lib/planner/plan-query.js';

export const PLANNER_SHARDS = ['s1', 's2', 's3', 's4'];

/** As the kit learns them from the catalog: users.id and orders.user_id are integer columns. */
const KEY_COLUMNS = new Map<string, KeyColumn>([
  ['users', { table: 'users', column: 'id', type: 'integer' }],
  ['orders', { table: 'orders', column: 'user_id', type: 'integer' }],
]);

export async function plannerRules(): Promise<RoutingRules> {
  return {
    family: 'postgres',
    tables: new Map([
      ['users', { shardKey: 'id' }],
      ['orders', { shardKey: 'user_id' }],
    ]),
    globalTables: new Set(['countries']),
    globalShard: 's1',
    maxShardRows: 200_000,
    maxJoinRows: 100_000,
    ring: await HashRing.create(PLANNER_SHARDS.map((name) => ({ name, weight: 1 }))),
    keyColumnOf: (table) => KEY_COLUMNS.get(table),
  };
}
