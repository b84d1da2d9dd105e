/**
 * A seeded generator of data and queries for the scatter-gather differential test: the same
 * rows go into the shards and into unsharded tables (the oracle), and every generated query is
 * described once and built twice from that description, once per side (`build` gets the side's
 * QuerySource and its table names).
 *
 * The data has duplicates and NULLs in every sort and group column. Text values are lowercase
 * ASCII so that every collation in play (PostgreSQL "C", MariaDB utf8mb4_unicode_ci) orders them
 * alike (see README on collations). A query only uses LIMIT when its ORDER BY is a total order
 * (it ends in `id` or in the group columns), so that the expected rows are well defined.
 *
 * Each query carries a `construct` tag naming what it exercises ('having:alias',
 * 'join:order-name', ...), so that a run can count refusals and wrong answers per construct.
 */
import type { Knex } from 'knex';

/** The sharded items table (shard key user_id) and its unsharded twin. */
export const TABLE = 'scatter_items';
export const ORACLE_TABLE = 'scatter_oracle';
/** The sharded buyers table (shard key id = items.user_id, so joins on it are co-located) and its twin. */
export const BUYERS = 'scatter_buyers';
export const ORACLE_BUYERS = 'scatter_oracle_buyers';

/** The table names one side of the comparison builds its queries on. */
export interface QueryTables {
  items: string;
  buyers: string;
}

export const SHARDED_TABLES: QueryTables = { items: TABLE, buyers: BUYERS };
export const ORACLE_TABLES: QueryTables = { items: ORACLE_TABLE, buyers: ORACLE_BUYERS };

/** The SQL family a target speaks: decides only syntax the other lacks (NULLS LAST in ORDER BY). */
export type QueryFamily = 'postgres' | 'mysql';

export function createRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface ItemRow {
  id: number;
  user_id: number;
  category: string | null;
  score: number | null;
  price: string | null;
  weight: number | null;
  label: string;
}

export interface BuyerRow {
  id: number;
  name: string;
  created_at: number | null;
  tier: string | null;
}

export async function createItemsTable(db: Knex, table: string): Promise<void> {
  await db.schema.dropTableIfExists(table);
  await db.schema.createTable(table, (t) => {
    t.bigInteger('id').primary();
    t.bigInteger('user_id').notNullable();
    t.string('category', 10).nullable();
    t.integer('score').nullable();
    t.decimal('price', 10, 2).nullable();
    t.double('weight').nullable();
    t.string('label', 20).notNullable();
  });
}

export async function createBuyersTable(db: Knex, table: string): Promise<void> {
  await db.schema.dropTableIfExists(table);
  await db.schema.createTable(table, (t) => {
    t.bigInteger('id').primary();
    t.string('name', 20).notNullable();
    t.integer('created_at').nullable();
    t.string('tier', 10).nullable();
  });
}

export function generateRows(random: () => number, count: number): ItemRow[] {
  const pick = <T>(values: readonly T[]) => values[Math.floor(random() * values.length)]!;
  return Array.from({ length: count }, (_, index) => ({
    id: index + 1,
    user_id: 1 + Math.floor(random() * 150),
    category: pick(['alpha', 'beta', 'gamma', 'delta', null]),
    score: random() < 0.12 ? null : Math.floor(random() * 101) - 50,
    price: random() < 0.1 ? null : (Math.floor(random() * 100_000) / 100).toFixed(2),
    weight: random() < 0.1 ? null : Math.round(random() * 1_000_000) / 1000,
    label: pick(['ant', 'bee', 'cat', 'dog', 'eel', 'fox', 'gnu']),
  }));
}

/**
 * One buyer per user_id 1..150, except about one in twelve left out (their items drop out of an
 * inner join). Names, creation times and tiers repeat; some creation times and tiers are NULL.
 */
export function generateBuyers(random: () => number): BuyerRow[] {
  const pick = <T>(values: readonly T[]) => values[Math.floor(random() * values.length)]!;
  const names = ['ada', 'bob', 'cy', 'dee', 'eve', 'fay', 'gus', 'hal', 'ivy', 'jo', 'kim', 'lu'];
  const buyers: BuyerRow[] = [];
  for (let id = 1; id <= 150; id++) {
    if (random() < 0.08) continue;
    buyers.push({
      id,
      name: pick(names),
      created_at: random() < 0.06 ? null : 1 + Math.floor(random() * 60),
      tier: pick(['gold', 'silver', 'bronze', 'bronze', null]),
    });
  }
  return buyers;
}

const SORTABLE = ['category', 'score', 'price', 'weight', 'label'] as const;
const GROUPABLE = ['category', 'label', 'score'] as const;
const AGGREGATABLE = ['score', 'price', 'weight'] as const;
const FUNCTIONS = ['count', 'sum', 'min', 'max', 'avg'] as const;
/** Group column lists of the grouped constructs: about 5, 7 and 35 groups. */
const GROUPINGS = [['category'], ['label'], ['category', 'label']] as const;

/** What a query is built from: a table -> builder function and a raw() (knex itself, or a kit's tables). */
export type QuerySource = ((table: string) => Knex.QueryBuilder) & { raw: Knex['raw'] };

export interface GeneratedQuery {
  /** What the query exercises, for counting results per construct. */
  construct: string;
  description: string;
  build: (db: QuerySource, tables: QueryTables) => Knex.QueryBuilder;
  /** True when the expected rows come in a well-defined order. */
  ordered: boolean;
  /** True when a database may itself reject the query (PostgreSQL: HAVING on a select alias). */
  oracleMayFail?: boolean;
}

type Random = () => number;
type Filter = { description: string; apply: (query: Knex.QueryBuilder) => Knex.QueryBuilder };

const KINDS = [
  'rows',
  'rows',
  'aggregate',
  'group',
  'distinct',
  'first',
  'pluck',
  'alias-order',
  'distinct-aggregate',
  'aggregate-expression',
  'having',
  'order-aggregate',
  'order-expression',
  'empty-route',
  'deep-offset',
  'shard-key-group',
  'join',
  'subquery',
  'lookup-join',
] as const;
/** A query's kind; its construct tag starts with it. */
type Kind = (typeof KINDS)[number];

/**
 * The next query of the sequence. `family` only changes SQL text the other family cannot run; it
 * draws the same random numbers either way, so a seed gives the same sequence on every target.
 */
export function generateQuery(random: Random, family: QueryFamily = 'postgres'): GeneratedQuery {
  const filter = randomFilter(random);
  const kind: Kind = KINDS[Math.floor(random() * KINDS.length)]!;
  const { unfiltered, ...query } = GENERATORS[kind](random, filter, family);
  return { ...query, description: clauses(unfiltered ? 'all rows' : filter.description, query.description) };
}

/** A generator's query; `unfiltered` when it chose not to apply the filter it was given. */
type Drawn = GeneratedQuery & { unfiltered?: boolean };
type Generator = (random: Random, filter: Filter, family: QueryFamily) => Drawn;

const GENERATORS: Record<Kind, Generator> = {
  rows: (random, filter) => plainQuery('rows', random, filter),
  first: (random, filter) => plainQuery('first', random, filter),
  pluck: (random, filter) => plainQuery('pluck', random, filter),
  aggregate: (random, filter) => aggregateQuery('aggregate', random, filter),
  group: (random, filter) => aggregateQuery('group', random, filter),
  distinct: distinctQuery,
  'alias-order': aliasOrderQuery,
  'distinct-aggregate': distinctAggregateQuery,
  'aggregate-expression': aggregateExpressionQuery,
  having: havingQuery,
  'order-aggregate': orderAggregateQuery,
  'order-expression': orderExpressionQuery,
  'empty-route': emptyRouteQuery,
  'deep-offset': deepOffsetQuery,
  'shard-key-group': shardKeyGroupQuery,
  join: joinQuery,
  subquery: subqueryQuery,
  'lookup-join': lookupJoinQuery,
};

const helpers = (random: Random) => ({
  pick: <T>(values: readonly T[]) => values[Math.floor(random() * values.length)]!,
  chance: (p: number) => random() < p,
  /** An integer in [low, high]. */
  between: (low: number, high: number) => low + Math.floor(random() * (high - low + 1)),
});

const clauses = (...parts: string[]) => parts.filter(Boolean).join(' ');

/** LIMIT (and sometimes OFFSET) with probability `p`, for a query whose order is total. */
function randomPage(random: Random, p: number, maxLimit: number, maxOffset: number): { limit?: number; offset?: number; description: string } {
  const { chance, between } = helpers(random);
  if (!chance(p)) return { description: '' };
  const limit = between(1, maxLimit);
  const offset = chance(0.5) ? between(0, maxOffset) : undefined;
  return { limit, ...(offset === undefined ? {} : { offset }), description: clauses(`limit ${limit}`, offset === undefined ? '' : `offset ${offset}`) };
}

function applyPage(query: Knex.QueryBuilder, page: { limit?: number; offset?: number }): Knex.QueryBuilder {
  let paged = query;
  if (page.limit !== undefined) paged = paged.limit(page.limit);
  if (page.offset !== undefined) paged = paged.offset(page.offset);
  return paged;
}

// --- the first kinds: plain rows, first(), pluck(), aggregates, groups, distinct ----------------

function plainQuery(kind: 'rows' | 'first' | 'pluck', random: Random, filter: Filter): GeneratedQuery {
  const { pick, chance } = helpers(random);
  const keys = Array.from({ length: Math.floor(random() * 3) }, () => ({
    column: pick(SORTABLE),
    direction: pick(['asc', 'desc'] as const),
    nulls: pick([undefined, undefined, 'first', 'last'] as const),
  }));
  const unique = keys.filter((key, index) => keys.findIndex((other) => other.column === key.column) === index);
  const ordered = kind === 'first' || chance(0.85);
  const idDirection = pick(['asc', 'desc'] as const);
  const limit = ordered && (kind === 'rows' ? chance(0.6) : false) ? 1 + Math.floor(random() * 40) : undefined;
  const offset = limit !== undefined && chance(0.5) ? Math.floor(random() * 30) : undefined;
  const columns = chance(0.5) ? ['id', 'user_id', 'category', 'score', 'price', 'weight', 'label'] : ['id', 'label', 'score'];
  return {
    construct: kind,
    description: clauses(
      kind === 'pluck' ? 'pluck label' : `${kind} ${columns.join(',')}`,
      ordered ? `order by ${[...unique.map((key) => `${key.column} ${key.direction}${key.nulls ? ` nulls ${key.nulls}` : ''}`), `id ${idDirection}`].join(', ')}` : '',
      limit !== undefined ? `limit ${limit}` : '',
      offset !== undefined ? `offset ${offset}` : '',
    ),
    ordered,
    build: (db, tables) => {
      let query = filter.apply(db(tables.items));
      if (ordered) {
        for (const key of unique) query = key.nulls ? query.orderBy(key.column, key.direction, key.nulls) : query.orderBy(key.column, key.direction);
        query = query.orderBy('id', idDirection);
      }
      query = applyPage(query, { ...(limit === undefined ? {} : { limit }), ...(offset === undefined ? {} : { offset }) });
      if (kind === 'first') return query.first(...columns);
      if (kind === 'pluck') return query.pluck('label');
      return query.select(...columns);
    },
  };
}

function aggregateQuery(kind: 'aggregate' | 'group', random: Random, filter: Filter): GeneratedQuery {
  const { pick, chance } = helpers(random);
  const groups = kind === 'group' ? [...new Set([pick(GROUPABLE), ...(chance(0.3) ? [pick(GROUPABLE)] : [])])] : [];
  const aggregates = Array.from({ length: 1 + Math.floor(random() * 3) }, (_, index) => {
    const fn = pick(FUNCTIONS);
    const column = fn === 'count' && chance(0.5) ? '*' : pick(AGGREGATABLE);
    return { fn, column, alias: `a${index}` };
  });
  const having = kind === 'group' && chance(0.4) ? { fn: pick(['count', 'sum'] as const), column: 'score', op: pick(['>', '<', '>='] as const), value: pick([1, 2, 5, 0, 20]) } : undefined;
  const orderGroups = kind === 'group' && chance(0.7);
  const orderAggregate = kind === 'group' && chance(0.4) ? pick(aggregates) : undefined;
  const direction = pick(['asc', 'desc'] as const);
  const limit = orderGroups && chance(0.5) ? 1 + Math.floor(random() * 8) : undefined;
  const offset = limit !== undefined && chance(0.5) ? Math.floor(random() * 4) : undefined;
  return {
    construct: having ? 'group:having-builder' : kind,
    description: clauses(
      `select ${[...groups, ...aggregates.map((a) => `${a.fn}(${a.column}) as ${a.alias}`)].join(', ')}`,
      groups.length ? `group by ${groups.join(', ')}` : '',
      having ? `having ${having.fn}(${having.column}) ${having.op} ${having.value}` : '',
      orderAggregate ? `order by ${orderAggregate.alias} ${direction}` : '',
      orderGroups ? `order by ${groups.join(', ')}` : '',
      limit !== undefined ? `limit ${limit}` : '',
      offset !== undefined ? `offset ${offset}` : '',
    ),
    ordered: orderGroups,
    build: (db, tables) => {
      let query = filter.apply(db(tables.items));
      if (groups.length) query = query.select(...groups).groupBy(groups);
      for (const { fn, column, alias } of aggregates) query = (query as any)[fn](`${column} as ${alias}`);
      if (having) query = query.having(db.raw(`${having.fn}(${having.column})`), having.op, having.value);
      if (orderAggregate) query = query.orderBy(orderAggregate.alias, direction);
      if (orderGroups) for (const group of groups) query = query.orderBy(group, direction);
      return applyPage(query, { ...(limit === undefined ? {} : { limit }), ...(offset === undefined ? {} : { offset }) });
    },
  };
}

function distinctQuery(random: Random, filter: Filter): GeneratedQuery {
  const { pick, chance } = helpers(random);
  const columns = [...new Set([pick(GROUPABLE), ...(chance(0.4) ? [pick(GROUPABLE)] : [])])];
  const ordered = chance(0.7);
  const direction = pick(['asc', 'desc'] as const);
  const limit = ordered && chance(0.5) ? 1 + Math.floor(random() * 6) : undefined;
  return {
    construct: 'distinct',
    description: clauses(`distinct ${columns.join(', ')}`, ordered ? `order by all ${direction}` : '', limit ? `limit ${limit}` : ''),
    ordered,
    build: (db, tables) => {
      let query = filter.apply(db(tables.items)).distinct(...columns);
      if (ordered) for (const column of columns) query = query.orderBy(column, direction);
      if (limit !== undefined) query = query.limit(limit);
      return query;
    },
  };
}

// --- expressions in the select list and in ORDER BY ---------------------------------------------

/** A computed column with an alias, ordered by the alias (then id). */
function aliasOrderQuery(random: Random, filter: Filter): GeneratedQuery {
  const { pick } = helpers(random);
  const expression = pick([
    { name: 'line-total', sql: 'coalesce(price, 0) * score as line_total', alias: 'line_total' },
    { name: 'shifted', sql: 'score * 2 + 100 as shifted', alias: 'shifted' },
  ] as const);
  const direction = pick(['asc', 'desc'] as const);
  const page = randomPage(random, 0.8, 30, 20);
  return {
    construct: `alias-order:${expression.name}`,
    description: clauses(`select id, price, score, ${expression.sql}`, `order by ${expression.alias} ${direction}, id`, page.description),
    ordered: true,
    build: (db, tables) =>
      applyPage(filter.apply(db(tables.items)).select('id', 'price', 'score', db.raw(expression.sql)).orderBy(expression.alias, direction).orderBy('id'), page),
  };
}

/** ORDER BY an expression over plain rows, ending in id. */
function orderExpressionQuery(random: Random, filter: Filter): GeneratedQuery {
  const { pick, chance } = helpers(random);
  const key = pick([
    { name: 'lower-label', sql: 'lower(label)' },
    { name: 'coalesce-score', sql: 'coalesce(score, 0)' },
    { name: 'abs-score', sql: 'abs(score)' },
  ] as const);
  const direction = pick(['asc', 'desc'] as const);
  const idDirection = pick(['asc', 'desc'] as const);
  const page = randomPage(random, 0.6, 40, 30);
  const columns = chance(0.5) ? ['id', 'user_id', 'category', 'score', 'price', 'label'] : ['id', 'label', 'score'];
  const orderBy = `${key.sql} ${direction}, id ${idDirection}`;
  return {
    construct: `order-expression:${key.name}`,
    description: clauses(`rows ${columns.join(',')}`, `order by ${orderBy}`, page.description),
    ordered: true,
    build: (db, tables) => applyPage(filter.apply(db(tables.items)).select(...columns).orderByRaw(orderBy), page),
  };
}

// --- aggregates: DISTINCT, expressions, HAVING, ORDER BY aggregates, the shard key -----------------

const RAW_DISTINCT = ['count(distinct user_id) as buyers', 'sum(distinct score) as s', 'avg(distinct price) as a', 'count(distinct category) as cats'] as const;
const KNEX_DISTINCT = [
  { fn: 'countDistinct', arg: 'category as n' },
  { fn: 'countDistinct', arg: 'user_id as u' },
  { fn: 'sumDistinct', arg: 'score as s' },
  { fn: 'sumDistinct', arg: 'price as p' },
  { fn: 'avgDistinct', arg: 'price as a' },
  { fn: 'avgDistinct', arg: 'score as m' },
] as const;

/** A non-empty subset of `values`, in their order. */
function subset<T>(random: Random, values: readonly T[], max: number): T[] {
  const chosen = values.filter(() => random() < 0.4).slice(0, max);
  return chosen.length ? chosen : [values[Math.floor(random() * values.length)]!];
}

/** Grouping by one of GROUPINGS with probability `p`, ordered by the groups (asc or desc) most of the time. */
function randomGrouping(random: Random, p: number) {
  const { pick, chance } = helpers(random);
  const groups: string[] = chance(p) ? [...pick(GROUPINGS)] : [];
  const ordered = groups.length > 0 && chance(0.75);
  const direction = pick(['asc', 'desc'] as const);
  const page = ordered ? randomPage(random, 0.4, 6, 3) : { description: '' };
  return {
    groups,
    ordered,
    page,
    description: clauses(groups.length ? `group by ${groups.join(', ')}` : '', ordered ? `order by ${groups.map((group) => `${group} ${direction}`).join(', ')}` : '', page.description),
    apply: (query: Knex.QueryBuilder) => {
      if (!groups.length) return query;
      let grouped = query.groupBy(groups);
      if (ordered) for (const group of groups) grouped = grouped.orderBy(group, direction);
      return applyPage(grouped, page);
    },
  };
}

/** count/sum/avg of DISTINCT values, written raw or with knex's countDistinct/sumDistinct/avgDistinct. */
function distinctAggregateQuery(random: Random, filter: Filter): GeneratedQuery {
  const raw = random() < 0.5;
  const rawAggregates = raw ? subset(random, RAW_DISTINCT, 3) : [];
  const knexAggregates = raw ? [] : subset(random, KNEX_DISTINCT, 2);
  const grouping = randomGrouping(random, 0.5);
  const selected = raw ? rawAggregates : knexAggregates.map(({ fn, arg }) => `${fn}(${arg})`);
  return {
    construct: `distinct-aggregate:${raw ? 'raw' : 'knex'}${grouping.groups.length ? '-grouped' : ''}`,
    description: clauses(`select ${[...grouping.groups, ...selected].join(', ')}`, grouping.description),
    ordered: grouping.ordered,
    build: (db, tables) => {
      let query = filter.apply(db(tables.items));
      if (grouping.groups.length) query = query.select(...grouping.groups);
      if (raw) query = query.select(...rawAggregates.map((sql) => db.raw(sql)));
      for (const { fn, arg } of knexAggregates) query = (query as any)[fn](arg);
      return grouping.apply(query);
    },
  };
}

const AGGREGATE_EXPRESSIONS = ['sum(price) / count(*) as mean', 'max(score) - min(score) as spread', 'count(*) * 2 as twice'] as const;

/** Arithmetic over aggregates in the select list, grouped or not. */
function aggregateExpressionQuery(random: Random, filter: Filter): GeneratedQuery {
  const expressions = subset(random, AGGREGATE_EXPRESSIONS, 3);
  const withCount = random() < 0.4;
  const grouping = randomGrouping(random, 0.5);
  return {
    construct: `aggregate-expression${grouping.groups.length ? ':grouped' : ''}`,
    description: clauses(`select ${[...grouping.groups, ...expressions, ...(withCount ? ['count(*) as n'] : [])].join(', ')}`, grouping.description),
    ordered: grouping.ordered,
    build: (db, tables) => {
      let query = filter.apply(db(tables.items));
      if (grouping.groups.length) query = query.select(...grouping.groups);
      query = query.select(...expressions.map((sql) => db.raw(sql)));
      if (withCount) query = query.count('* as n');
      return grouping.apply(query);
    },
  };
}

/** HAVING as people write it with knex: havingRaw with bindings, having(raw, op, value), having on an alias. */
function havingQuery(random: Random, filter: Filter): GeneratedQuery {
  const { pick, chance } = helpers(random);
  const groups = [...pick(GROUPINGS)];
  const counts = groups.length > 1 ? [5, 15, 25, 35] : [40, 100, 130, 170];
  const variant = pick(['count-raw', 'ratio-raw', 'avg-and-count-raw', 'count-builder', 'alias'] as const);
  const n = pick(counts);
  const k = pick([-3, -1, 0, 1, 2]);
  const a = pick([450, 490, 500, 520]);
  const withSum = chance(0.5);
  const ordered = chance(0.75);
  const direction = pick(['asc', 'desc'] as const);
  const page = ordered ? randomPage(random, 0.4, 6, 3) : { description: '' };
  const having = {
    'count-raw': `havingRaw('count(*) > ?', [${n}])`,
    'ratio-raw': `havingRaw('sum(score) / count(*) >= ?', [${k}])`,
    'avg-and-count-raw': `havingRaw('avg(weight) > ? and count(*) >= ?', [${a}, ${Math.ceil(n / 2)}])`,
    'count-builder': `having(raw('count(*)'), '>', ${n})`,
    alias: `having('a0', '>', ${n})`,
  }[variant];
  return {
    construct: `having:${variant}`,
    ...(variant === 'alias' ? { oracleMayFail: true } : {}),
    description: clauses(
      `select ${[...groups, 'count(*) as a0', ...(withSum ? ['sum(score) as s'] : [])].join(', ')}`,
      `group by ${groups.join(', ')}`,
      having,
      ordered ? `order by ${groups.map((group) => `${group} ${direction}`).join(', ')}` : '',
      page.description,
    ),
    ordered,
    build: (db, tables) => {
      let query = filter.apply(db(tables.items)).select(...groups).count('* as a0');
      if (withSum) query = query.sum('score as s');
      query = query.groupBy(groups);
      if (variant === 'count-raw') query = query.havingRaw('count(*) > ?', [n]);
      else if (variant === 'ratio-raw') query = query.havingRaw('sum(score) / count(*) >= ?', [k]);
      else if (variant === 'avg-and-count-raw') query = query.havingRaw('avg(weight) > ? and count(*) >= ?', [a, Math.ceil(n / 2)]);
      else if (variant === 'count-builder') query = query.having(db.raw('count(*)'), '>', n);
      else query = query.having('a0', '>', n);
      if (ordered) for (const group of groups) query = query.orderBy(group, direction);
      return applyPage(query, page);
    },
  };
}

/** Grouped rows ordered by an aggregate expression, then by the group columns (a total order). */
function orderAggregateQuery(random: Random, filter: Filter, family: QueryFamily): GeneratedQuery {
  const { pick, chance } = helpers(random);
  const groups = [...pick(GROUPINGS)];
  const key = pick([
    { name: 'count', sql: 'count(*) desc' },
    { name: 'count-asc', sql: 'count(*)' },
    // MariaDB has no NULLS FIRST/LAST; it puts NULLs last in a descending order anyway.
    { name: 'mean', sql: family === 'postgres' ? 'sum(price) / count(*) desc nulls last' : 'sum(price) / count(*) desc' },
    { name: 'spread', sql: 'max(score) - min(score)' },
  ] as const);
  const withTotal = chance(0.5);
  const page = randomPage(random, 0.5, 8, 4);
  const orderBy = `${key.sql}, ${groups.join(', ')}`;
  return {
    construct: `order-aggregate:${key.name}`,
    description: clauses(`select ${[...groups, 'count(*) as n', ...(withTotal ? ['sum(price) as total'] : [])].join(', ')}`, `group by ${groups.join(', ')}`, `order by ${orderBy}`, page.description),
    ordered: true,
    build: (db, tables) => {
      let query = filter.apply(db(tables.items)).select(...groups).count('* as n');
      if (withTotal) query = query.sum('price as total');
      return applyPage(query.groupBy(groups).orderByRaw(orderBy), page);
    },
  };
}

/** Grouped by the shard key itself, ordered by an aggregate alias and the key, with a limit. */
function shardKeyGroupQuery(random: Random, filter: Filter): GeneratedQuery {
  const { pick, chance, between } = helpers(random);
  const direction = pick(['asc', 'desc'] as const);
  const withSum = chance(0.4);
  const limit = between(1, 20);
  const offset = chance(0.3) ? between(1, 10) : undefined;
  return {
    construct: 'shard-key-group',
    description: clauses(
      `select user_id, count(*) as n, count(distinct category) as c${withSum ? ', sum(score) as s' : ''}`,
      'group by user_id',
      `order by n ${direction}, user_id`,
      `limit ${limit}`,
      offset === undefined ? '' : `offset ${offset}`,
    ),
    ordered: true,
    build: (db, tables) => {
      let query = filter.apply(db(tables.items)).select('user_id').count('* as n').countDistinct('category as c');
      if (withSum) query = query.sum('score as s');
      return applyPage(query.groupBy('user_id').orderBy('n', direction).orderBy('user_id'), { limit, ...(offset === undefined ? {} : { offset }) });
    },
  };
}

// --- routing: shard-key conditions no row can meet; deep offsets ---------------------------------

function emptyRouteQuery(random: Random, filter: Filter): GeneratedQuery {
  const { pick } = helpers(random);
  const route = pick([
    { name: 'in-empty', description: 'user_id in ()', apply: (query: Knex.QueryBuilder) => query.whereIn('user_id', []) },
    { name: 'contradiction', description: 'user_id = 1 and user_id = 2', apply: (query: Knex.QueryBuilder) => query.where('user_id', 1).where('user_id', 2) },
  ] as const);
  const result = pick(['count-first', 'sum', 'group-count', 'rows'] as const);
  const description = {
    'count-first': 'count(*) as n first()',
    sum: 'sum(score) as s',
    'group-count': 'select category, count(*) as n group by category order by category',
    rows: 'rows id,label order by id',
  }[result];
  return {
    construct: `empty-route:${route.name}:${result}`,
    description: clauses(route.description, description),
    ordered: true,
    build: (db, tables) => {
      const query = route.apply(filter.apply(db(tables.items)));
      if (result === 'count-first') return query.count('* as n').first();
      if (result === 'sum') return query.sum('score as s');
      if (result === 'group-count') return query.select('category').count('* as n').groupBy('category').orderBy('category');
      return query.select('id', 'label').orderBy('id');
    },
  };
}

/** A page far into the rows (900 of them): legal SQL, though a kit may bound the offset it merges. */
function deepOffsetQuery(random: Random, filter: Filter): Drawn {
  const { pick, chance } = helpers(random);
  const offset = pick([0, 50, 800] as const);
  const direction = pick(['asc', 'desc'] as const);
  const filtered = chance(0.5);
  return {
    construct: `deep-offset:${offset}`,
    unfiltered: !filtered,
    description: `rows id,user_id,label order by id ${direction} limit 5 offset ${offset}`,
    ordered: true,
    build: (db, tables) => {
      const table = db(tables.items);
      return (filtered ? filter.apply(table) : table).select('id', 'user_id', 'label').orderBy('id', direction).limit(5).offset(offset);
    },
  };
}

// --- co-located join: items.user_id = buyers.id (both shard keys) --------------------------------

function joinQuery(random: Random, filter: Filter): GeneratedQuery {
  const { pick } = helpers(random);
  const variant = pick(['order-created', 'order-name', 'group-tier'] as const);
  const direction = pick(['asc', 'desc'] as const);
  const page = variant === 'group-tier' ? { description: '' } : randomPage(random, 0.7, 30, 20);
  const description = {
    'order-created': `join buyers select items.* order by buyers.created_at ${direction}, items.id`,
    'order-name': `join buyers select items.id, items.label, buyers.name order by buyers.name ${direction}, items.id`,
    'group-tier': `join buyers select buyers.tier, count(*) as n, sum(items.score) as s group by buyers.tier order by buyers.tier ${direction}`,
  }[variant];
  return {
    construct: `join:${variant}`,
    description: clauses(description, page.description),
    ordered: true,
    build: (db, { items, buyers }) => {
      const joined = filter.apply(db(items).join(buyers, `${items}.user_id`, `${buyers}.id`));
      if (variant === 'group-tier') {
        return joined.select(`${buyers}.tier`).count('* as n').sum(`${items}.score as s`).groupBy(`${buyers}.tier`).orderBy(`${buyers}.tier`, direction);
      }
      const selected = variant === 'order-created' ? joined.select(`${items}.*`) : joined.select(`${items}.id`, `${items}.label`, `${buyers}.name`);
      const sortColumn = variant === 'order-created' ? `${buyers}.created_at` : `${buyers}.name`;
      return applyPage(selected.orderBy(sortColumn, direction).orderBy(`${items}.id`), page);
    },
  };
}

// --- subqueries: co-located on the shard keys, or independent and inlined -----------------------

function subqueryQuery(random: Random, filter: Filter): GeneratedQuery {
  const { pick, between } = helpers(random);
  const variant = pick(['in-colocated', 'exists-colocated', 'not-exists-colocated', 'in-inline', 'not-in-inline', 'in-grouped-colocated'] as const);
  const tier = pick(['gold', 'silver', 'bronze'] as const);
  const threshold = between(3, 8);
  const description = {
    'in-colocated': `user_id in (select id from buyers where tier = '${tier}')`,
    'exists-colocated': `exists (select 1 from buyers where buyers.id = items.user_id and tier = '${tier}')`,
    'not-exists-colocated': `not exists (select 1 from buyers where buyers.id = items.user_id and created_at is not null)`,
    'in-inline': `id in (select id from buyers where tier = '${tier}')`,
    'not-in-inline': `id not in (select id from buyers where tier = '${tier}')`,
    'in-grouped-colocated': `user_id in (select user_id from items group by user_id having count(*) > ${threshold})`,
  }[variant];
  return {
    construct: `subquery:${variant}`,
    description: clauses(description, 'select id, user_id, label order by id'),
    ordered: true,
    build: (db, { items, buyers }) => {
      let query = filter.apply(db(items));
      const tierBuyers = () => db(buyers).select('id').where('tier', tier);
      if (variant === 'in-colocated') query = query.whereIn('user_id', tierBuyers());
      if (variant === 'in-inline') query = query.whereIn('id', tierBuyers());
      if (variant === 'not-in-inline') query = query.whereNotIn('id', tierBuyers());
      if (variant === 'exists-colocated') query = query.whereExists(db(buyers).select(db.raw('1')).whereRaw(`${buyers}.id = ${items}.user_id`).where('tier', tier));
      if (variant === 'not-exists-colocated') query = query.whereNotExists(db(buyers).select(db.raw('1')).whereRaw(`${buyers}.id = ${items}.user_id`).whereNotNull('created_at'));
      if (variant === 'in-grouped-colocated') query = query.whereIn('user_id', db(items).select('user_id').groupBy('user_id').havingRaw('count(*) > ?', [threshold]));
      return query.select('id', 'user_id', 'label').orderBy('id');
    },
  };
}

// --- lookup joins: on columns that are not both shard keys --------------------------------------

function lookupJoinQuery(random: Random): Drawn {
  const { pick, chance } = helpers(random);
  const variant = pick(['on-id', 'left-on-id', 'on-score'] as const);
  const direction = pick(['asc', 'desc'] as const);
  const page = randomPage(random, 0.7, 30, 20);
  const scored = chance(0.5);
  const description = {
    'on-id': `join buyers on buyers.id = items.id select items.id, items.label, buyers.name order by buyers.name ${direction}, items.id`,
    'left-on-id': `left join buyers on buyers.id = items.id select items.*, buyers.tier order by items.id ${direction}`,
    'on-score': `join buyers on buyers.created_at = items.score select items.id, buyers.id as buyer order by items.id ${direction}, buyer`,
  }[variant];
  return {
    construct: `lookup-join:${variant}`,
    unfiltered: true,
    description: clauses(description, scored ? 'where items.score > 0' : '', page.description),
    ordered: true,
    build: (db, { items, buyers }) => {
      const from = variant === 'left-on-id' ? db(items).leftJoin(buyers, `${buyers}.id`, `${items}.id`) : variant === 'on-id' ? db(items).join(buyers, `${buyers}.id`, `${items}.id`) : db(items).join(buyers, `${buyers}.created_at`, `${items}.score`);
      const query = scored ? from.where(`${items}.score`, '>', 0) : from;
      if (variant === 'on-id') return applyPage(query.select(`${items}.id`, `${items}.label`, `${buyers}.name`).orderBy(`${buyers}.name`, direction).orderBy(`${items}.id`), page);
      if (variant === 'left-on-id') return applyPage(query.select(`${items}.*`, `${buyers}.tier`).orderBy(`${items}.id`, direction), page);
      return applyPage(query.select(`${items}.id`, `${buyers}.id as buyer`).orderBy(`${items}.id`, direction).orderBy(`${buyers}.id`), page);
    },
  };
}

function randomFilter(random: Random): Filter {
  const variants: Filter[] = [
    { description: 'all rows', apply: (query) => query },
    { description: 'score > 0', apply: (query) => query.where('score', '>', 0) },
    { description: "category in (alpha, beta)", apply: (query) => query.whereIn('category', ['alpha', 'beta']) },
    { description: 'price is null or weight < 500', apply: (query) => query.where((q) => q.whereNull('price').orWhere('weight', '<', 500)) },
    { description: "label <> 'ant' and score <= 10", apply: (query) => query.whereNot('label', 'ant').where('score', '<=', 10) },
    { description: 'no rows', apply: (query) => query.where('score', '>', 1000) },
  ];
  return variants[Math.floor(random() * variants.length)]!;
}
