/**
 * Memory of merges that hold rows, on 1M rows over the two PostgreSQL shards of the local cluster:
 *
 *   countDistinct   count(distinct product_id): each shard returns its distinct product ids (~50k
 *                   each), the merge holds them in a set
 *   grouped         the same per category (~20 groups): each shard returns its distinct
 *                   (category, product_id) pairs (~400k each)
 *   shard key       count(distinct user_id), user_id being the shard key: a key lives on one shard,
 *                   so each shard's distinct count is its own and only the counts travel
 *   lookup join     bench_events join bench_products on product_id, ORDER BY e.id LIMIT 100, with
 *                   100k and then 1M outer rows qualifying: the outer rows, the products looked up
 *                   by batched whereIn and the joined pairs are all in memory before the first row
 *   baselines       count(*) (one row per shard) and orderBy('id').limit(100) (a streaming sort
 *                   merge of 100 rows per shard), in the same run, to read the figures against
 *
 * Each case runs 3 times (interleaved rounds), after a forced GC (node runs the benchmarks with
 * --expose-gc); heapUsed and RSS are sampled every 10 ms while the query runs and once when it
 * settles (the result still held), and the figure is the peak minus the value before. Peak heap
 * includes garbage not collected yet, as a real process would carry it. A timer cannot fire while
 * the merge runs synchronously, so a peak inside one long synchronous step may be missed.
 * The kit raises scatter.maxShardRows and scatter.maxJoinRows to 2M for these runs; a second kit
 * with the defaults (200k / 100k) shows which cases the bounds refuse (MERGE_LIMIT) instead.
 */
import { renderTable } from '../../lib/cli/render-table.js';
import { fmix32 } from '../../lib/hashing/slot-table.js';
import { createShardKit, type ShardKit, type ShardKitConfig, type ShardKitError } from '../../lib/index.js';
import clusterConfig from '../../shards.cluster.config.js';
import type { Benchmark } from '../bench.js';
import { withLocalCluster } from '../local-cluster.js';
import { copyRows } from './bulk-copy.js';
import { percentile } from './latency.js';

const EVENTS = Number(process.env.MEMORY_BENCH_ROWS ?? 1_000_000);
const USERS = 200_000;
const PRODUCTS = 50_000;
const CATEGORIES = 20;
const ROUNDS = 3;
const LIMIT = 100;
/** amount = id * 7919 mod 1M is a permutation of 0..999999 over ids 1..1M: `amount > X` selects exactly 1M - 1 - X rows. */
const AMOUNT_MODULUS = 1_000_000;
const JOIN_SMALL_OVER = AMOUNT_MODULUS - 100_001;
const JOIN_LARGE_OVER = -1;
const BOUNDS = { maxShardRows: 2_000_000, maxJoinRows: 2_000_000 };
const DEFAULT_BOUNDS = { maxShardRows: 200_000, maxJoinRows: 100_000 };
const QUERY_MS = Number(process.env.MEMORY_BENCH_QUERY_MS ?? 30_000);
const EVENT_COLUMNS = ['id', 'user_id', 'product_id', 'category', 'amount'];
const PRODUCT_COLUMNS = ['id', 'name', 'price'];
const MB = 1024 * 1024;
const sum = (values: readonly number[]) => values.reduce((total, value) => total + value, 0);

/** A 32-bit integer hash (the ring's murmur3 finalizer over a seeded product): spreads ids over users, products and categories. */
function mix(value: number, seed: number): number {
  return fmix32(Math.imul(value ^ seed, 0x9e3779b1));
}

const categoryName = (index: number) => `category-${String(index).padStart(2, '0')}`;
const productName = (id: number) => `product-${id}`;

function eventRow(id: number) {
  return {
    id,
    user_id: (mix(id, 0x1234) % USERS) + 1,
    product_id: (mix(id, 0x5678) % PRODUCTS) + 1,
    category: categoryName(mix(id, 0x9abc) % CATEGORIES),
    amount: (id * 7919) % AMOUNT_MODULUS,
  };
}

function* eventsOn(shardOfUser: Uint8Array, shard: number): Generator<Record<string, unknown>> {
  for (let id = 1; id <= EVENTS; id++) {
    const row = eventRow(id);
    if (shardOfUser[row.user_id] === shard) yield row;
  }
}

function* productsOn(kit: ShardKit, shard: string): Generator<Record<string, unknown>> {
  for (let id = 1; id <= PRODUCTS; id++) if (kit.shardFor(id) === shard) yield { id, name: productName(id), price: (mix(id, 0xdef0) % 100_000) + 1 };
}

interface JoinExpectation {
  /** Outer rows that qualify. */
  outer: number;
  /** Products they refer to: the rows the lookups fetch. */
  inner: number;
  /** The first LIMIT qualifying rows by id, joined. */
  page: { id: number; name: string }[];
}

/** What the queries must answer, and the rows each shard sends to the merge, from the generator. */
function expectations(shardOfUser: Uint8Array, shards: number) {
  const users = new Uint8Array(USERS + 1);
  const usersPerShard = new Array<number>(shards).fill(0);
  // product_id is not the shard key: a product's rows sit on every shard.
  const productsOnShard = Array.from({ length: shards }, () => new Uint8Array(PRODUCTS + 1));
  const productPairsOnShard = Array.from({ length: shards }, () => new Uint8Array(CATEGORIES * (PRODUCTS + 1)));
  const products = new Uint8Array(PRODUCTS + 1);
  const productPairs = new Uint8Array(CATEGORIES * (PRODUCTS + 1));
  const productsPerShard = new Array<number>(shards).fill(0);
  const productPairsPerShard = new Array<number>(shards).fill(0);
  const categoryProducts = new Map<string, number>();
  const join = (over: number) => ({ over, products: new Uint8Array(PRODUCTS + 1), outer: 0, inner: 0, page: [] as { id: number; name: string }[] });
  const joins = [join(JOIN_SMALL_OVER), join(JOIN_LARGE_OVER)];
  for (let id = 1; id <= EVENTS; id++) {
    const row = eventRow(id);
    const shard = shardOfUser[row.user_id]!;
    if (users[row.user_id] === 0) {
      users[row.user_id] = 1;
      usersPerShard[shard]!++;
    }
    const category = mix(id, 0x9abc) % CATEGORIES;
    const productPair = category * (PRODUCTS + 1) + row.product_id;
    if (productsOnShard[shard]![row.product_id] === 0) {
      productsOnShard[shard]![row.product_id] = 1;
      productsPerShard[shard]!++;
    }
    if (productPairsOnShard[shard]![productPair] === 0) {
      productPairsOnShard[shard]![productPair] = 1;
      productPairsPerShard[shard]!++;
    }
    products[row.product_id] = 1;
    if (productPairs[productPair] === 0) {
      productPairs[productPair] = 1;
      categoryProducts.set(row.category, (categoryProducts.get(row.category) ?? 0) + 1);
    }
    for (const expected of joins) {
      if (row.amount <= expected.over) continue;
      expected.outer++;
      if (expected.products[row.product_id] === 0) {
        expected.products[row.product_id] = 1;
        expected.inner++;
      }
      if (expected.page.length < LIMIT) expected.page.push({ id, name: productName(row.product_id) });
    }
  }
  const [small, large] = joins.map(({ outer, inner, page }): JoinExpectation => ({ outer, inner, page })) as [JoinExpectation, JoinExpectation];
  return {
    distinctProducts: products.reduce((total, seen) => total + seen, 0),
    productsPerShard,
    productPairsPerShard,
    categoryProducts,
    distinctUsers: sum(usersPerShard),
    usersPerShard,
    joinSmall: small,
    joinLarge: large,
  };
}
type Expected = ReturnType<typeof expectations>;

async function createTables(kit: ShardKit): Promise<void> {
  await Promise.all(
    kit.shardNames.map(async (shard) => {
      const db = kit.forShard(shard);
      await dropTables(db);
      await db.schema.createTable('bench_events', (table) => {
        table.integer('id').primary();
        table.integer('user_id').notNullable();
        table.integer('product_id').notNullable();
        table.text('category').notNullable();
        table.integer('amount').notNullable();
      });
      await db.schema.createTable('bench_products', (table) => {
        table.integer('id').primary();
        table.text('name').notNullable();
        table.integer('price').notNullable();
      });
    }),
  );
}

async function dropTables(db: ReturnType<ShardKit['forShard']>): Promise<void> {
  await db.schema.dropTableIfExists('bench_events');
  await db.schema.dropTableIfExists('bench_products');
}

interface Sample {
  ms: number;
  heapMB: number;
  rssMB: number;
}

/** Runs `work` after a forced GC, sampling memory every 10 ms; peaks are relative to just before. */
async function measure<T>(work: () => Promise<T>): Promise<Sample & { result?: T; error?: unknown }> {
  (globalThis as { gc?: () => void }).gc?.();
  const before = process.memoryUsage();
  let peakHeap = before.heapUsed;
  let peakRss = before.rss;
  const sample = () => {
    const { heapUsed, rss } = process.memoryUsage();
    if (heapUsed > peakHeap) peakHeap = heapUsed;
    if (rss > peakRss) peakRss = rss;
  };
  const timer = setInterval(sample, 10);
  const started = performance.now();
  let outcome: { result?: T; error?: unknown };
  try {
    const result = await work();
    sample();
    outcome = { result };
  } catch (error) {
    sample();
    outcome = { error };
  } finally {
    clearInterval(timer);
  }
  const ms = performance.now() - started;
  return { ms, heapMB: (peakHeap - before.heapUsed) / MB, rssMB: (peakRss - before.rss) / MB, ...outcome };
}

interface Case {
  name: string;
  /** Its name in the JSON line. */
  key: string;
  /** Rows the merge receives and holds (for the baselines: the rows the shards return). */
  rows: number;
  /** Rows one shard sends to the merge: what scatter.maxShardRows / maxJoinRows bound. */
  boundedRows: { rows: number; bound: 'maxShardRows' | 'maxJoinRows' } | undefined;
  run(kit: ShardKit): Promise<unknown>;
  /** Throws when the answer is wrong. */
  check(result: unknown): void;
}

function assertEqual(actual: unknown, expected: unknown, what: string): void {
  const [a, b] = [JSON.stringify(actual), JSON.stringify(expected)];
  if (a !== b) throw new Error(`${what}: expected ${b.slice(0, 300)}, got ${a.slice(0, 300)}`);
}

function cases(expected: Expected, shards: number): Case[] {
  const joinCase = (key: string, over: number, join: JoinExpectation): Case => ({
    name: `lookup join, ${join.outer >= 1_000_000 ? `${join.outer / 1_000_000}M` : `${join.outer / 1000}k`} outer`,
    key,
    rows: join.outer + join.inner,
    // Outer rows are bounded in total (the concat stops at maxJoinRows + 1), inner rows in total.
    boundedRows: { rows: Math.max(join.outer, join.inner), bound: 'maxJoinRows' },
    run: (kit) =>
      kit
        .table('bench_events as e')
        .join('bench_products as p', 'p.id', 'e.product_id')
        .where('e.amount', '>', over)
        .select('e.id', 'p.name')
        .orderBy('e.id')
        .limit(LIMIT),
    check: (result) => assertEqual(result, join.page, key),
  });
  return [
    {
      name: 'count(*), baseline',
      key: 'count',
      rows: shards,
      boundedRows: undefined,
      run: (kit) => kit.table('bench_events').count('* as n'),
      check: (result) => assertEqual((result as { n: unknown }[]).map((row) => Number(row.n)), [EVENTS], 'count(*)'),
    },
    {
      name: `top ${LIMIT} by id, baseline`,
      key: 'sortMerge',
      rows: shards * LIMIT,
      boundedRows: undefined,
      run: (kit) => kit.table('bench_events').orderBy('id').limit(LIMIT),
      check: (result) =>
        assertEqual(
          (result as { id: number }[]).map((row) => row.id),
          Array.from({ length: LIMIT }, (_, index) => index + 1),
          'orderBy id',
        ),
    },
    {
      name: 'countDistinct(product_id)',
      key: 'countDistinct',
      rows: sum(expected.productsPerShard),
      boundedRows: { rows: Math.max(...expected.productsPerShard), bound: 'maxShardRows' },
      run: (kit) => kit.table('bench_events').countDistinct('product_id as n'),
      check: (result) => assertEqual((result as { n: unknown }[]).map((row) => Number(row.n)), [expected.distinctProducts], 'countDistinct'),
    },
    {
      name: 'countDistinct by category',
      key: 'groupedDistinct',
      rows: sum(expected.productPairsPerShard),
      boundedRows: { rows: Math.max(...expected.productPairsPerShard), bound: 'maxShardRows' },
      run: (kit) => kit.table('bench_events').select('category').countDistinct('product_id as n').groupBy('category'),
      check: (result) => {
        const actual = (result as { category: string; n: unknown }[]).map((row) => [row.category, Number(row.n)] as const).sort(([a], [b]) => (a < b ? -1 : 1));
        const wanted = [...expected.categoryProducts].sort(([a], [b]) => (a < b ? -1 : 1));
        assertEqual(actual, wanted, 'grouped countDistinct');
      },
    },
    {
      name: 'countDistinct(shard key)',
      key: 'shardKeyDistinct',
      rows: 2,
      boundedRows: { rows: 1, bound: 'maxShardRows' },
      run: (kit) => kit.table('bench_events').countDistinct('user_id as n'),
      check: (result) => assertEqual((result as { n: unknown }[]).map((row) => Number(row.n)), [expected.distinctUsers], 'countDistinct of the shard key'),
    },
    joinCase('lookupJoin100k', JOIN_SMALL_OVER, expected.joinSmall),
    joinCase('lookupJoin1m', JOIN_LARGE_OVER, expected.joinLarge),
  ];
}

const kitConfig = (scatter: typeof BOUNDS): ShardKitConfig => ({
  ...clusterConfig,
  tables: { ...clusterConfig.tables, bench_events: { shardKey: 'user_id' }, bench_products: { shardKey: 'id' } },
  scatter,
  timeouts: { queryMs: QUERY_MS },
});

const codeOf = (error: unknown) => (error as ShardKitError).code ?? (error as Error).name;
const round = (value: number, digits: number) => Number(value.toFixed(digits));

export const crossShardMemoryBenchmark: Benchmark = {
  name: 'cross-shard-memory',
  description: `memory of COUNT DISTINCT merges and lookup joins on ${EVENTS.toLocaleString('en')} rows over 2 PostgreSQL shards, against count(*) and a sort merge`,
  run: () =>
    withLocalCluster(async () => {
      const kit = await createShardKit(kitConfig(BOUNDS));
      let defaultsKit: ShardKit | undefined;
      try {
        const shardNames = kit.shardNames;
        const shardOfUser = new Uint8Array(USERS + 1);
        for (let user = 1; user <= USERS; user++) shardOfUser[user] = shardNames.indexOf(kit.shardFor(user));
        const expected = expectations(shardOfUser, shardNames.length);
        const loadStarted = performance.now();
        await createTables(kit);
        await Promise.all(
          shardNames.map(async (shard, index) => {
            const db = kit.forShard(shard);
            await copyRows(db, 'bench_events', EVENT_COLUMNS, eventsOn(shardOfUser, index));
            await copyRows(db, 'bench_products', PRODUCT_COLUMNS, productsOn(kit, shard));
            await db.raw('analyze bench_events, bench_products');
          }),
        );
        console.log(
          `loaded ${EVENTS} events and ${PRODUCTS} products with COPY in ${((performance.now() - loadStarted) / 1000).toFixed(1)} s; ` +
            `distinct product ids per shard ${expected.productsPerShard.join(' / ')}, (category, product_id) pairs per shard ${expected.productPairsPerShard.join(' / ')}`,
        );
        // Routing check: a few users' rows read back through the kit, routed by the shard key.
        for (const user of [1, 777, 123_456, USERS]) {
          const [row] = await kit.table('bench_events').where('user_id', user).count('* as n');
          let wanted = 0;
          for (let id = 1; id <= EVENTS; id++) if (eventRow(id).user_id === user) wanted++;
          assertEqual(Number((row as { n: unknown }).n), wanted, `rows of user ${user}`);
        }

        const all = cases(expected, shardNames.length);
        const samples = new Map<string, Sample[]>(all.map((entry) => [entry.name, []]));
        for (let index = 0; index < ROUNDS; index++) {
          for (const entry of all) {
            const sample = await measure(() => entry.run(kit));
            if (sample.error !== undefined) throw sample.error;
            entry.check(sample.result);
            samples.get(entry.name)!.push(sample);
          }
        }
        const median = (name: string, pick: (sample: Sample) => number) => percentile(samples.get(name)!.map(pick), 0.5);
        const figures = all.map((entry) => ({
          entry,
          ms: median(entry.name, (sample) => sample.ms),
          heapMB: median(entry.name, (sample) => sample.heapMB),
          rssMB: median(entry.name, (sample) => sample.rssMB),
        }));
        console.log(
          renderTable(
            [{ header: 'case', wrap: true }, 'rows held', 'ms', 'peak heap MB', 'peak RSS MB', 'bytes/row'],
            figures.map(({ entry, ms, heapMB, rssMB }) => [entry.name, entry.rows, Math.round(ms), round(heapMB, 1), round(rssMB, 1), Math.round((heapMB * MB) / entry.rows)]),
            80,
          ),
        );
        console.log(`(median of ${ROUNDS}; scatter bounds ${BOUNDS.maxShardRows} / ${BOUNDS.maxJoinRows}, timeouts.queryMs ${QUERY_MS})`);

        // The same cases with the default bounds: beyond them a query must fail with MERGE_LIMIT.
        defaultsKit = await createShardKit(kitConfig(DEFAULT_BOUNDS));
        const withDefaults = defaultsKit;
        const verdicts = [];
        for (const entry of all.filter((candidate) => candidate.boundedRows)) {
          const { rows, bound } = entry.boundedRows!;
          const limit = DEFAULT_BOUNDS[bound];
          const sample = await measure(() => entry.run(withDefaults));
          if (sample.error === undefined) entry.check(sample.result);
          const outcome = sample.error === undefined ? 'answered' : codeOf(sample.error);
          const refuses = rows > limit;
          const asExpected = refuses ? outcome === 'MERGE_LIMIT' : outcome === 'answered';
          verdicts.push({ entry, rows, bound, limit, outcome, asExpected, sample });
        }
        console.log(
          renderTable(
            [{ header: 'default bounds', wrap: true }, 'rows', 'bound', 'outcome', 'ms', 'heap MB'],
            verdicts.map(({ entry, rows, limit, outcome, asExpected, sample }) => [
              entry.name,
              rows,
              limit,
              asExpected ? outcome : `${outcome} (unexpected)`,
              Math.round(sample.ms),
              round(sample.heapMB, 1),
            ]),
            80,
          ),
        );
        console.log('(rows: the most one shard sends to a merge (maxShardRows), or the rows one side of a join fetches (maxJoinRows))');

        const heapOf = (key: string) => round(figures.find(({ entry }) => entry.key === key)!.heapMB, 2);
        console.log(
          JSON.stringify({
            bench: 'cross-shard-memory',
            rows: EVENTS,
            countDistinctPeakHeapMB: heapOf('countDistinct'),
            countDistinctRows: sum(expected.productsPerShard),
            shardKeyDistinctPeakHeapMB: heapOf('shardKeyDistinct'),
            groupedDistinctPeakHeapMB: heapOf('groupedDistinct'),
            groupedDistinctRows: sum(expected.productPairsPerShard),
            lookupJoin100kPeakHeapMB: heapOf('lookupJoin100k'),
            lookupJoin1mPeakHeapMB: heapOf('lookupJoin1m'),
            baselinePeakHeapMB: heapOf('count'),
            sortMergePeakHeapMB: heapOf('sortMerge'),
            defaultBoundsRefuse: verdicts.every((verdict) => verdict.asExpected),
            defaultBounds: Object.fromEntries(verdicts.map(({ entry, outcome }) => [entry.key, outcome])),
          }),
        );
      } finally {
        await Promise.all(kit.shardNames.map((shard) => dropTables(kit.forShard(shard)))).catch(() => undefined);
        await defaultsKit?.close();
        await kit.close();
      }
    }),
};
