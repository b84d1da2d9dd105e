/**
 * What migrations, rebalances and other tools need of the databases: each shard's primary as a
 * guarded knex instance (every statement through it passes the node's gate: deadline, breaker,
 * admission, typed errors), the dialect that speaks to it, and the ring that places keys now.
 * The topology implements it; tests give these layers a recording fake.
 */
import type { Knex } from 'knex';
import type { DialectAdapter } from '../dialect/dialect-adapter.js';
import type { HashRing } from '../hashing/hash-ring.js';

export interface ShardDatabases {
  /** Every configured shard, standby ones included, in configuration order. */
  readonly shardNames: readonly string[];
  /** The ring that places keys now (a rebalance switches it). */
  readonly ring: HashRing;
  /** The guarded knex instance of `shard`'s primary. */
  primary(shard: string): Knex;
  dialectOf(shard: string): DialectAdapter;
}
