/**
 * Turns a knex builder into a QueryPlan. Pure: no I/O, the ring is only asked who owns a key.
 *
 *   kit.table('users').where('id', 7)                 -> one    (owner of 7)
 *   kit.table('users').whereIn('id', [1, 2, 3])       -> some   (owners of 1, 2, 3; each gets its keys)
 *   kit.table('users').where('id', 1).where('id', 2)  -> none   (no key satisfies both)
 *   kit.table('users').where('active', true)          -> all    (concatenated)
 *   kit.table('users').insert([{ id: 1 }, { id: 2 }]) -> one insert per owning shard
 *
 * A select on several shards gets a merge plan (plan-merge.ts); subqueries are co-located,
 * inlined or refused (plan-subqueries.ts); a join not on both shard keys is a lookup join
 * (plan-lookup-join.ts). Refused: unpinned update/delete/truncate unless the caller opted in
 * (ShardKeyRequiredError), and whatever cannot be answered exactly (UnsupportedQueryError).
 */
import { ShardKeyRequiredError, ShardKeyUpdateError, UnknownTableError, UnsupportedQueryError } from '../errors.js';
import { canonicalKey, type KeyColumn } from '../hashing/key-canonical.js';
import { shardKeyIdentity } from '../hashing/shard-key.js';
import type { SqlFamily } from '../config/config-types.js';
import { type AnyQueryBuilder, isSqlExpression, ROW_METHODS } from '../knex/builder-internals.js';
import { aggregatesRows, planMerge } from './plan-merge.js';
import { type LookupJoinSpec, planLookupJoin } from './plan-lookup-join.js';
import { planPointRead } from './plan-point-read.js';
import { planSubqueries } from './plan-subqueries.js';
import { type QueryPlan, type Route, routeToOwners } from './query-plan.js';
import { type JoinShape, type QueryShape, readQueryShape, type TableRef } from './query-shape.js';

export interface RoutingRules {
  family: SqlFamily;
  tables: ReadonlyMap<string, { shardKey: string; slotColumn?: string }>;
  globalTables: ReadonlySet<string>;
  globalShard: string;
  ring: { slotOf(key: unknown): number; ownerOfSlot(slot: number): string; readonly shardNames: readonly string[] };
  /** How a table's shard-key column compares values, when known (engine/key-types.ts). */
  keyColumnOf(table: string): KeyColumn | undefined;
  /** Rows one shard may return to a merge that holds them all (scatter.maxShardRows). */
  maxShardRows: number;
  /** Rows each side of a lookup join may fetch (scatter.maxJoinRows). */
  maxJoinRows: number;
}

export interface PlanOptions {
  /** The caller opted in to updates and deletes without a shard-key condition (kit.allShards). */
  allShards: boolean;
}


export function planQuery(builder: AnyQueryBuilder, rules: RoutingRules, options: PlanOptions): QueryPlan {
  return planPointRead(builder, rules, ownerOfKey) ?? planByShape(builder, rules, options);
}

/** The full planner, for any query (planQuery takes a point read's shortcut first). */
export function planByShape(builder: AnyQueryBuilder, rules: RoutingRules, options: PlanOptions): QueryPlan {
  const shape = readQueryShape(builder, (table) => rules.tables.get(table)?.shardKey);
  const { name } = shape.table;
  const table = rules.tables.get(name);
  if (!table && !rules.globalTables.has(name)) throw unknownTable(name, rules);
  const inlined = planSubqueries(shape.subqueries, { table: shape.table, shardKey: table?.shardKey }, {
    family: rules.family,
    shardKeyOf: (candidate) => rules.tables.get(candidate)?.shardKey,
    isGlobal: (candidate) => rules.globalTables.has(candidate),
  });
  if (inlined.length > 0) {
    // The kit evaluates these first and plans the query again with their answers.
    return { table: name, method: shape.method, route: { kind: 'none' }, inline: inlined };
  }
  if (!table) return planGlobal(builder, shape, rules);
  if (shape.mergeConstructs.includes('union')) {
    throw new UnsupportedQueryError(
      'union',
      'the parts of a union may live on different shards: run each part with kit.table() and combine the results',
    );
  }
  const lookup = lookupJoinOf(builder, shape, table.shardKey, rules);
  if (lookup) return { table: name, method: shape.method, route: { kind: 'none' }, lookupJoin: lookup };
  if (shape.method === 'insert') return planInsert(shape, table, rules);
  if (shape.method === 'columnInfo') return { table: name, method: shape.method, route: { kind: 'one', shard: rules.globalShard } };

  const plan = planByKeys(shape, rules);
  assertKeyUnchanged(shape, plan.route, table.shardKey, rules);
  if (plan.route.kind === 'none' && ROW_METHODS.has(shape.method) && aggregatesRows(builder, rules.family)) {
    // No row matches, yet an aggregate without GROUP BY answers one row (count 0, sum NULL):
    // any shard gives it exactly, with the driver's types, for its WHERE matches nothing there.
    return { ...plan, route: { kind: 'one', shard: rules.ring.shardNames[0]! } };
  }
  if (plan.route.kind === 'one' || plan.route.kind === 'none') return plan;
  return planMultiShard(builder, plan, shape, table.shardKey, rules, options);
}

function planGlobal(builder: AnyQueryBuilder, shape: QueryShape, rules: RoutingRules): QueryPlan {
  const sharded = shape.joins.find((join) => !rules.globalTables.has(join.table.name));
  if (sharded) {
    if (!rules.tables.has(sharded.table.name)) throw unknownTable(sharded.table.name, rules);
    // A sharded table's rows live on every shard, the global table's on one: a lookup join.
    const lookupJoin = planLookupJoin(builder, shape, sharded, rules.family, rules.maxJoinRows);
    return { table: shape.table.name, method: shape.method, route: { kind: 'none' }, lookupJoin };
  }
  return { table: shape.table.name, method: shape.method, route: { kind: 'one', shard: rules.globalShard } };
}

function planInsert(shape: QueryShape, { shardKey, slotColumn }: { shardKey: string; slotColumn?: string }, rules: RoutingRules): QueryPlan {
  const rows = shape.insertRows ?? [];
  const table = shape.table.name;
  const slots: number[] = [];
  const rowsByShard = groupByOwner(rows.keys(), (index) => {
    const row = rows[index];
    if (typeof row !== 'object' || row === null) {
      throw new ShardKeyRequiredError(table, `row ${index} of an insert into "${table}" is ${row === null ? 'null' : typeof row}, not an object`);
    }
    const key = row[shardKey];
    if (key === undefined) {
      throw new ShardKeyRequiredError(table, `row ${index} of an insert into "${table}" has no value for its shard key "${shardKey}"`);
    }
    if (isSqlExpression(key)) throw new ShardKeyRequiredError(table, `row ${index} of an insert into "${table}" computes its shard key "${shardKey}" in SQL; pass the value`);
    const slot = slotOfKey(rules, table, key);
    if (slotColumn !== undefined) slots.push(slot);
    return rules.ring.ownerOfSlot(slot);
  });
  if (shape.upsert) assertUpsertKeepsKeys(shape, Object.keys(rowsByShard), shardKey, rules);
  const route = routeToOwners(Object.keys(rowsByShard));
  if (slotColumn === undefined) return { table, method: 'insert', route, rowsByShard };
  return { table, method: 'insert', route, rowsByShard, insertSlots: { column: slotColumn, slots } };
}

/** The hash slot of `value` as a key of `table`, canonicalised by its column's type. */
function slotOfKey(rules: RoutingRules, table: string, value: unknown): number {
  return rules.ring.slotOf(canonicalKey(value, rules.keyColumnOf(table)));
}

/** The shard that owns `value` as a key of `table`, canonicalised by its column's type. */
export function ownerOfKey(rules: RoutingRules, table: string, value: unknown): string {
  return rules.ring.ownerOfSlot(slotOfKey(rules, table, value));
}

/** Identity of a key of `table`: equal for keys the database finds as one row. */
export function keyIdentity(rules: RoutingRules, table: string, value: unknown): string {
  return shardKeyIdentity(canonicalKey(value, rules.keyColumnOf(table)));
}

/**
 * The identities of the shard keys a statement on a sharded table touches: an insert's rows'
 * keys, or the keys its WHERE clause admits and the key an update assigns; undefined when it
 * does not pin them (or the table is not sharded). The read cache keys its entries and
 * invalidations by them.
 */
export function pinnedKeyIdentities(builder: AnyQueryBuilder, rules: RoutingRules): string[] | undefined {
  const shape = readQueryShape(builder, (table) => rules.tables.get(table)?.shardKey);
  const table = shape.table.name;
  const shardKey = rules.tables.get(table)?.shardKey;
  if (shardKey === undefined) return undefined;
  const identity = (value: unknown) => keyIdentity(rules, table, value);
  if (shape.method === 'insert') {
    const rows = shape.insertRows ?? [];
    const keys = rows.map((row) => (typeof row === 'object' && row !== null ? (row as Record<string, unknown>)[shardKey] : undefined));
    return keys.some((key) => key === undefined || isSqlExpression(key)) ? undefined : keys.map(identity);
  }
  if (!shape.key?.exclusive) return undefined;
  const keys = intersectKeys(shape.key.valueLists, identity).map(identity);
  // An update may move a row to another key of the same shard: that key's reads change too.
  const assigned = shape.updates?.[shardKey];
  if (assigned === undefined) return keys;
  return isSqlExpression(assigned) ? undefined : [...keys, identity(assigned)];
}

/** Routes by the keys the WHERE clause admits: the intersection of its `=`/`IN` conditions. */
function planByKeys(shape: QueryShape, rules: RoutingRules): QueryPlan {
  // Object literals, not `{ ...base, route }`: on Node.js 20 a spread followed by a new property leaves V8's fast path (~0.6 µs a plan).
  const { method } = shape;
  const table = shape.table.name;
  const key = shape.key!;
  if (!key.exclusive) return { table, method, route: { kind: 'all', shards: [...rules.ring.shardNames] } };

  const keysByShard = groupByOwner(
    intersectKeys(key.valueLists, (value) => keyIdentity(rules, table, value)),
    (value) => ownerOfKey(rules, table, value),
  );
  const route = routeToOwners(Object.keys(keysByShard));
  if (route.kind !== 'some') return { table, method, route };
  return { table, method, route, keysByShard, keyColumns: [...key.spellings] };
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
function intersectKeys(valueLists: readonly unknown[][], identityOf: (value: unknown) => string): unknown[] {
  const [first = [], ...rest] = valueLists;
  // The common case, where('id', 7): nothing to intersect or deduplicate.
  if (rest.length === 0 && first.length === 1 && first[0] !== null) return first;
  const restIdentities = rest.map((list) => new Set(list.filter((value) => value !== null).map(identityOf)));
  const seen = new Set<string>();
  const keys: unknown[] = [];
  for (const value of first) {
    if (value === null) continue;
    const identity = identityOf(value);
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
  if (ROW_METHODS.has(shape.method)) {
    const tables = [shape.table, ...shape.joins.map((join) => join.table)].map(({ name, qualifier }) => ({ name, qualifier }));
    return { ...plan, merge: planMerge(builder, { family: rules.family, tables, shardKey, maxShardRows: rules.maxShardRows }) };
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

/**
 * No update moves a row to another shard unnoticed: assigning the shard key is allowed only on
 * one shard and to a value that shard owns; an increment, a decrement or an SQL expression
 * computes a key shardkit cannot check, so it is refused.
 */
function assertKeyUnchanged(shape: QueryShape, route: Route, shardKey: string, rules: RoutingRules): void {
  const table = shape.table.name;
  if (shape.counters && Object.hasOwn(shape.counters, shardKey)) {
    throw new ShardKeyUpdateError(table, shardKey, 'an increment or decrement of the shard key moves the row to the owner of a key nobody checked');
  }
  if (!shape.updates || !Object.hasOwn(shape.updates, shardKey) || route.kind === 'none') return;
  const newKey = shape.updates[shardKey];
  if (isSqlExpression(newKey)) throw new ShardKeyUpdateError(table, shardKey, 'the new shard key is computed in SQL, so its owner cannot be checked');
  if (route.kind !== 'one' || ownerOfKey(rules, table, newKey) !== route.shard) throw new ShardKeyUpdateError(table, shardKey);
}

/**
 * An upsert's merge may set the shard key only to the inserted row's own key (knex's merge()
 * of every column, or a list naming it), which routed the row; a merge that assigns it another
 * value or an SQL expression would move the row.
 */
function assertUpsertKeepsKeys(shape: QueryShape, shards: readonly string[], shardKey: string, rules: RoutingRules): void {
  const updates = shape.upsert?.updates;
  if (updates === undefined || Array.isArray(updates) || typeof updates !== 'object' || updates === null) return;
  if (!Object.hasOwn(updates, shardKey)) return;
  const table = shape.table.name;
  const newKey = (updates as Record<string, unknown>)[shardKey];
  if (isSqlExpression(newKey) || shards.some((shard) => ownerOfKey(rules, table, newKey) !== shard)) {
    throw new ShardKeyUpdateError(table, shardKey, "the upsert's merge assigns the shard key a value other than the inserted row's");
  }
}

/**
 * Joins run on each shard alone when the joined table holds its matching rows on the same
 * shard (both joined on their shard keys); any other join of one table runs as a lookup join.
 */
function lookupJoinOf(builder: AnyQueryBuilder, shape: QueryShape, shardKey: string, rules: RoutingRules): LookupJoinSpec | undefined {
  for (const join of shape.joins) {
    const joined = rules.tables.get(join.table.name);
    if (!joined && !rules.globalTables.has(join.table.name)) throw unknownTable(join.table.name, rules);
    if (joined && joinsOnShardKeys(join, shape.table, shardKey, joined.shardKey)) continue;
    return planLookupJoin(builder, shape, join, rules.family, rules.maxJoinRows);
  }
  return undefined;
}

function joinsOnShardKeys(join: JoinShape, main: TableRef, mainKey: string, joinedKey: string): boolean {
  const left = `${main.qualifier}.${mainKey}`;
  const right = `${join.table.qualifier}.${joinedKey}`;
  return join.equalities.some(([a, b]) => (a === left && b === right) || (a === right && b === left));
}

function unknownTable(name: string, rules: RoutingRules): UnknownTableError {
  return new UnknownTableError(name, [...rules.tables.keys(), ...rules.globalTables]);
}
