/**
 * Turns a knex builder into a QueryPlan. Pure: no I/O, the ring is only asked who owns a key.
 *
 *   kit.table('users').where('id', 7)                 -> one    (owner of 7)
 *   kit.table('users').whereIn('id', [1, 2, 3])       -> some   (owners of 1, 2, 3; each gets its keys)
 *   kit.table('users').where('id', 1).where('id', 2)  -> none   (no key satisfies both)
 *   kit.table('users').where('active', true)          -> all    (concatenated)
 *   kit.table('users').insert([{ id: 1 }, { id: 2 }]) -> one insert per owning shard
 *
 * Refused: unpinned update/delete/truncate unless the caller opted in (ShardKeyRequiredError);
 * multi-shard selects that need merging (ORDER BY, aggregates, GROUP BY, DISTINCT, ...),
 * subqueries, and joins that are not co-located on the shard key (UnsupportedQueryError).
 */
import { ShardKeyRequiredError, ShardKeyUpdateError, UnknownTableError, UnsupportedQueryError } from '../errors.js';
import { shardKeyIdentity } from '../hashing/shard-key.js';
import type { SqlFamily } from '../config/config-types.js';
import type { AnyQueryBuilder } from './builder-internals.js';
import { planMerge } from './plan-merge.js';
import { type QueryPlan, type Route, routeToOwners } from './query-plan.js';
import { type JoinShape, type QueryShape, readQueryShape, type TableRef } from './query-shape.js';

export interface RoutingRules {
  family: SqlFamily;
  tables: ReadonlyMap<string, { shardKey: string }>;
  globalTables: ReadonlySet<string>;
  globalShard: string;
  ring: { shardFor(key: unknown): string; readonly shardNames: readonly string[] };
}

export interface PlanOptions {
  /** The caller opted in to updates and deletes without a shard-key condition (kit.allShards). */
  allShards: boolean;
}

const READ_METHODS = new Set(['select', 'first', 'pluck']);

export function planQuery(builder: AnyQueryBuilder, rules: RoutingRules, options: PlanOptions): QueryPlan {
  const shape = readQueryShape(builder, (table) => rules.tables.get(table)?.shardKey);
  const { name } = shape.table;
  if (rules.globalTables.has(name)) return planGlobal(shape, rules);
  const table = rules.tables.get(name);
  if (!table) throw unknownTable(name, rules);
  if (shape.mergeConstructs.includes('union')) {
    throw new UnsupportedQueryError(
      'union',
      'the parts of a union may live on different shards: run each part with kit.table() and combine the results',
    );
  }
  if (shape.hasSubquery) {
    throw new UnsupportedQueryError(
      'subquery',
      'subqueries are not routed: run the inner query first, or use kit.forKey(key) for SQL on one shard',
    );
  }
  assertColocatedJoins(shape, table.shardKey, rules);
  if (shape.method === 'insert') return planInsert(shape, table.shardKey, rules);
  if (shape.method === 'columnInfo') return { table: name, method: shape.method, route: { kind: 'one', shard: rules.globalShard } };

  const plan = planByKeys(shape, rules);
  if (shape.assignments && Object.hasOwn(shape.assignments, table.shardKey)) {
    assertKeyStaysOnShard(plan.route, name, table.shardKey, shape.assignments[table.shardKey], rules);
  }
  if (plan.route.kind === 'one' || plan.route.kind === 'none') return plan;
  return planMultiShard(builder, plan, shape, table.shardKey, rules, options);
}

function planGlobal(shape: QueryShape, rules: RoutingRules): QueryPlan {
  for (const join of shape.joins) {
    if (!rules.globalTables.has(join.table.name)) {
      throw new UnsupportedQueryError(
        'join',
        `global table "${shape.table.name}" lives on ${rules.globalShard} and cannot join sharded table "${join.table.name}"`,
      );
    }
  }
  return { table: shape.table.name, method: shape.method, route: { kind: 'one', shard: rules.globalShard } };
}

function planInsert(shape: QueryShape, shardKey: string, rules: RoutingRules): QueryPlan {
  const rows = shape.insertRows ?? [];
  const rowsByShard = groupByOwner(rows.keys(), (index) => {
    const key = rows[index]![shardKey];
    if (key === undefined) {
      throw new ShardKeyRequiredError(
        shape.table.name,
        `row ${index} of an insert into "${shape.table.name}" has no value for its shard key "${shardKey}"`,
      );
    }
    return rules.ring.shardFor(key);
  });
  return { table: shape.table.name, method: 'insert', route: routeToOwners(Object.keys(rowsByShard)), rowsByShard };
}

/** Routes by the keys the WHERE clause admits: the intersection of its `=`/`IN` conditions. */
function planByKeys(shape: QueryShape, rules: RoutingRules): QueryPlan {
  const base = { table: shape.table.name, method: shape.method };
  const key = shape.key!;
  if (!key.exclusive) return { ...base, route: { kind: 'all', shards: [...rules.ring.shardNames] } };

  const keysByShard = groupByOwner(intersectKeys(key.valueLists), (value) => rules.ring.shardFor(value));
  const route = routeToOwners(Object.keys(keysByShard));
  if (route.kind !== 'some') return { ...base, route };
  return { ...base, route, keysByShard, keyColumns: [...key.spellings] };
}

/** Items grouped by the shard that owns them, shards in order of first appearance. */
function groupByOwner<T>(items: Iterable<T>, ownerOf: (item: T) => string): Record<string, T[]> {
  const groups: Record<string, T[]> = {};
  for (const item of items) {
    const owner = ownerOf(item);
    const group = groups[owner];
    if (group) group.push(item);
    else groups[owner] = [item];
  }
  return groups;
}

/** Keys present in every list, in first-list order. NULL never equals a key, so it is dropped. */
function intersectKeys(valueLists: readonly unknown[][]): unknown[] {
  const [first = [], ...rest] = valueLists;
  // The common case, where('id', 7): nothing to intersect or deduplicate.
  if (rest.length === 0 && first.length === 1 && first[0] !== null) return first;
  const restIdentities = rest.map((list) => new Set(list.filter((value) => value !== null).map(shardKeyIdentity)));
  const seen = new Set<string>();
  const keys: unknown[] = [];
  for (const value of first) {
    if (value === null) continue;
    const identity = shardKeyIdentity(value);
    if (seen.has(identity) || !restIdentities.every((identities) => identities.has(identity))) continue;
    seen.add(identity);
    keys.push(value);
  }
  return keys;
}


/** A query on several shards: writes need an explicit opt-in, selects a merge plan. */
function planMultiShard(
  builder: AnyQueryBuilder,
  plan: QueryPlan,
  shape: QueryShape,
  shardKey: string,
  rules: RoutingRules,
  options: PlanOptions,
): QueryPlan {
  if (READ_METHODS.has(shape.method)) {
    const tables = [shape.table, ...shape.joins.map((join) => join.table)].map(({ name, qualifier }) => ({ name, qualifier }));
    return { ...plan, merge: planMerge(builder, rules.family, tables) };
  }
  if (plan.route.kind === 'all' && !options.allShards) {
    const where = `where("${shardKey}", ...) or whereIn("${shardKey}", [...])`;
    throw new ShardKeyRequiredError(
      shape.table.name,
      `${shape.method} on "${shape.table.name}" without ${where} would run on every shard; ` +
        `add the condition, or opt in with kit.allShards('${shape.table.name}')`,
    );
  }
  if (shape.limit !== undefined) {
    throw new UnsupportedQueryError('limit', `${shape.method} with a limit cannot be split across shards`);
  }
  return plan;
}

function assertKeyStaysOnShard(route: Route, table: string, shardKey: string, newKey: unknown, rules: RoutingRules): void {
  if (route.kind === 'none') return;
  if (route.kind !== 'one' || rules.ring.shardFor(newKey) !== route.shard) throw new ShardKeyUpdateError(table, shardKey);
}

/** Joins run on each shard alone, so a joined table must hold its matching rows on the same shard. */
function assertColocatedJoins(shape: QueryShape, shardKey: string, rules: RoutingRules): void {
  for (const join of shape.joins) {
    const joined = rules.tables.get(join.table.name);
    if (!joined) {
      if (rules.globalTables.has(join.table.name)) {
        throw new UnsupportedQueryError(
          'join',
          `"${join.table.name}" is a global table on ${rules.globalShard}; it cannot be joined with sharded "${shape.table.name}"`,
        );
      }
      throw unknownTable(join.table.name, rules);
    }
    if (!joinsOnShardKeys(join, shape.table, shardKey, joined.shardKey)) {
      throw new UnsupportedQueryError(
        'join',
        `join of "${shape.table.name}" and "${join.table.name}" must be on their shard keys ` +
          `(${shape.table.qualifier}.${shardKey} = ${join.table.qualifier}.${joined.shardKey}) so that it runs within each shard`,
      );
    }
  }
}

function joinsOnShardKeys(join: JoinShape, main: TableRef, mainKey: string, joinedKey: string): boolean {
  const left = `${main.qualifier}.${mainKey}`;
  const right = `${join.table.qualifier}.${joinedKey}`;
  return join.equalities.some(([a, b]) => (a === left && b === right) || (a === right && b === left));
}

function unknownTable(name: string, rules: RoutingRules): UnknownTableError {
  return new UnknownTableError(name, [...rules.tables.keys(), ...rules.globalTables]);
}
