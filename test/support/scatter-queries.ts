/**
 * A seeded generator of data and queries for the scatter-gather differential test: the same
 * rows go into the shards and into one unsharded table (the oracle), and every generated query
 * is built twice from one description, once per side.
 *
 * The data has duplicates and NULLs in every sort and group column. Text values are lowercase
 * ASCII so that every collation in play (PostgreSQL "C", MariaDB utf8mb4_unicode_ci) orders them
 * alike (see README on collations). A query only uses LIMIT when its ORDER BY is a total order,
 * so that the expected rows are well defined.
 */
import type { Knex } from 'knex';

export const TABLE = 'scatter_items';
export const ORACLE_TABLE = 'scatter_oracle';

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

const SORTABLE = ['category', 'score', 'price', 'weight', 'label'] as const;
const GROUPABLE = ['category', 'label', 'score'] as const;
const AGGREGATABLE = ['score', 'price', 'weight'] as const;
const FUNCTIONS = ['count', 'sum', 'min', 'max', 'avg'] as const;

/** What a query is built from: a table -> builder function and a raw() (knex itself, or a kit's tables). */
export type QuerySource = ((table: string) => Knex.QueryBuilder) & { raw: Knex['raw'] };

export interface GeneratedQuery {
  description: string;
  build: (db: QuerySource, table: string) => Knex.QueryBuilder;
  /** True when the expected rows come in a well-defined order. */
  ordered: boolean;
}

export function generateQuery(random: () => number): GeneratedQuery {
  const pick = <T>(values: readonly T[]) => values[Math.floor(random() * values.length)]!;
  const chance = (p: number) => random() < p;
  const filter = randomFilter(random);
  const kind = pick(['rows', 'rows', 'aggregate', 'group', 'group', 'distinct', 'first', 'pluck'] as const);
  const parts: string[] = [filter.description];

  if (kind === 'aggregate' || kind === 'group') {
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
    parts.push(
      `select ${[...groups, ...aggregates.map((a) => `${a.fn}(${a.column}) as ${a.alias}`)].join(', ')}`,
      groups.length ? `group by ${groups.join(', ')}` : '',
      having ? `having ${having.fn}(${having.column}) ${having.op} ${having.value}` : '',
      orderAggregate ? `order by ${orderAggregate.alias} ${direction}` : '',
      orderGroups ? `order by ${groups.join(', ')}` : '',
      limit !== undefined ? `limit ${limit}` : '',
      offset !== undefined ? `offset ${offset}` : '',
    );
    return {
      description: parts.filter(Boolean).join(' '),
      ordered: orderGroups,
      build: (db, table) => {
        let query = filter.apply(db(table));
        if (groups.length) query = query.select(...groups).groupBy(groups);
        for (const { fn, column, alias } of aggregates) query = (query as any)[fn](`${column} as ${alias}`);
        if (having) query = query.having(db.raw(`${having.fn}(${having.column})`), having.op, having.value);
        if (orderAggregate) query = query.orderBy(orderAggregate.alias, direction);
        if (orderGroups) for (const group of groups) query = query.orderBy(group, direction);
        if (limit !== undefined) query = query.limit(limit);
        if (offset !== undefined) query = query.offset(offset);
        return query;
      },
    };
  }

  if (kind === 'distinct') {
    const columns = [...new Set([pick(GROUPABLE), ...(chance(0.4) ? [pick(GROUPABLE)] : [])])];
    const ordered = chance(0.7);
    const direction = pick(['asc', 'desc'] as const);
    const limit = ordered && chance(0.5) ? 1 + Math.floor(random() * 6) : undefined;
    parts.push(`distinct ${columns.join(', ')}`, ordered ? `order by all ${direction}` : '', limit ? `limit ${limit}` : '');
    return {
      description: parts.filter(Boolean).join(' '),
      ordered,
      build: (db, table) => {
        let query = filter.apply(db(table)).distinct(...columns);
        if (ordered) for (const column of columns) query = query.orderBy(column, direction);
        if (limit !== undefined) query = query.limit(limit);
        return query;
      },
    };
  }

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
  parts.push(
    `${kind} ${columns.join(',')}`,
    ordered ? `order by ${[...unique.map((key) => `${key.column} ${key.direction}${key.nulls ? ` nulls ${key.nulls}` : ''}`), `id ${idDirection}`].join(', ')}` : '',
    limit !== undefined ? `limit ${limit}` : '',
    offset !== undefined ? `offset ${offset}` : '',
  );
  return {
    description: parts.filter(Boolean).join(' '),
    ordered,
    build: (db, table) => {
      let query = filter.apply(db(table));
      if (ordered) {
        for (const key of unique) query = key.nulls ? query.orderBy(key.column, key.direction, key.nulls) : query.orderBy(key.column, key.direction);
        query = query.orderBy('id', idDirection);
      }
      if (limit !== undefined) query = query.limit(limit);
      if (offset !== undefined) query = query.offset(offset);
      if (kind === 'first') return query.first(...columns);
      if (kind === 'pluck') return query.pluck('label');
      return query.select(...columns);
    },
  };
}

function randomFilter(random: () => number): { description: string; apply: (query: Knex.QueryBuilder) => Knex.QueryBuilder } {
  const variants: { description: string; apply: (query: Knex.QueryBuilder) => Knex.QueryBuilder }[] = [
    { description: 'all rows', apply: (query) => query },
    { description: 'score > 0', apply: (query) => query.where('score', '>', 0) },
    { description: "category in (alpha, beta)", apply: (query) => query.whereIn('category', ['alpha', 'beta']) },
    { description: 'price is null or weight < 500', apply: (query) => query.where((q) => q.whereNull('price').orWhere('weight', '<', 500)) },
    { description: "label <> 'ant' and score <= 10", apply: (query) => query.whereNot('label', 'ant').where('score', '<=', 10) },
    { description: 'no rows', apply: (query) => query.where('score', '>', 1000) },
  ];
  return variants[Math.floor(random() * variants.length)]!;
}
