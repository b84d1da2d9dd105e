/**
 * The facade a repository layer holds: it wires configuration, topology, planner and engine,
 * and hands out knex builders that are routed when they run.
 */
import type { Knex } from 'knex';
import type { ResolvedConfig, ShardKitConfig } from './config/config-types.js';
import { resolveConfig } from './config/resolve-config.js';
import { executePlan } from './engine/execute-plan.js';
import { PrimaryShardAccess } from './engine/primary-shard-access.js';
import { createRoutingKnex } from './engine/routing-knex.js';
import type { ShardAccess } from './engine/shard-access.js';
import { KitClosedError, UnknownTableError, UnsupportedQueryError } from './errors.js';
import type { AnyQueryBuilder } from './planner/builder-internals.js';
import { planQuery, type RoutingRules } from './planner/plan-query.js';
import type { QueryPlan } from './planner/query-plan.js';
import { parseTableRef } from './planner/query-shape.js';
import { Topology } from './topology/topology.js';

export async function createShardKit(config: ShardKitConfig): Promise<ShardKit> {
  const resolved = resolveConfig(config);
  return new ShardKit(resolved, await Topology.open(resolved));
}

export class ShardKit {
  readonly config: ResolvedConfig;
  /** Shards, nodes and the ring, for tools that work per node (migrations, status). */
  readonly topology: Topology;
  private readonly rules: RoutingRules;
  private readonly access: ShardAccess;
  private readonly router: Knex;
  /** Builders whose caller opted in to unpinned writes on every shard. */
  private readonly allShardBuilders = new WeakSet<AnyQueryBuilder>();
  private closed = false;

  constructor(config: ResolvedConfig, topology: Topology) {
    this.config = config;
    this.topology = topology;
    this.rules = {
      tables: config.tables,
      globalTables: config.globalTables,
      globalShard: config.globalShard,
      ring: topology.ring,
    };
    this.access = new PrimaryShardAccess(topology);
    this.router = createRoutingKnex(config.family, (builder) => this.execute(builder));
  }

  /** Shard names in configuration order. */
  get shardNames(): string[] {
    return this.topology.shards.map((shard) => shard.name);
  }

  /** The name of the shard that owns `key` (throws InvalidShardKeyError for a value that is not a key). */
  shardFor(key: unknown): string {
    return this.topology.ring.shardFor(key);
  }

  /**
   * A knex query builder on `table`, routed when it runs: to the owner of the shard key it pins,
   * the owners of a `whereIn` list, each row's owner for inserts, or every shard (selects only).
   */
  table<TRecord extends {} = any, TResult = TRecord[]>(table: string): Knex.QueryBuilder<TRecord, TResult> {
    this.assertOpen();
    const { name } = parseTableRef(table);
    if (!this.config.tables.has(name) && !this.config.globalTables.has(name)) {
      throw new UnknownTableError(name, [...this.config.tables.keys(), ...this.config.globalTables]);
    }
    const builder = this.router<TRecord, TResult>(table);
    // knex's transacting() swaps the builder's client, which would bypass routing silently.
    builder.transacting = () => {
      throw new UnsupportedQueryError(
        'transacting',
        'a routed builder cannot join a transaction: use kit.forKey(key).transaction(async (trx) => trx(table)...)',
      );
    };
    return builder;
  }

  /** Like table(), but updates, deletes and truncates without a shard-key condition run on every shard. */
  allShards<TRecord extends {} = any, TResult = TRecord[]>(table: string): Knex.QueryBuilder<TRecord, TResult> {
    const builder = this.table<TRecord, TResult>(table);
    this.allShardBuilders.add(builder as AnyQueryBuilder);
    return builder;
  }

  /** The knex instance of the primary that owns `key`: `kit.forKey(id).transaction(...)` is a single-shard transaction. */
  forKey(key: unknown): Knex {
    this.assertOpen();
    return this.topology.ownerOf(key).primary.knex;
  }

  /** The knex instance of a shard's primary, for per-shard work (schema, maintenance, reports). */
  forShard(name: string): Knex {
    this.assertOpen();
    return this.topology.shard(name).primary.knex;
  }

  /** The plan a builder from table() would run, without running it. */
  explain(builder: Knex.QueryBuilder): QueryPlan {
    return planQuery(builder as AnyQueryBuilder, this.rules, { allShards: this.allShardBuilders.has(builder as AnyQueryBuilder) });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([this.topology.close(), this.router.destroy()]);
  }

  private async execute(builder: AnyQueryBuilder): Promise<unknown> {
    this.assertOpen();
    return executePlan(this.explain(builder), builder, this.access);
  }

  private assertOpen(): void {
    if (this.closed) throw new KitClosedError();
  }
}
