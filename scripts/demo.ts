/**
 * npm run demo: shardkit on the default topology (shards.config.ts: four embedded PGlite
 * shards, or whatever SHARDKIT_CONFIG names). It applies migrations/ to every shard, writes
 * users and orders, and shows where rows went, how queries route, and what is refused.
 * Re-runnable: it empties the demo tables first.
 */
import { backfillOptions } from '../lib/cli/backfill-progress.js';
import { statusTables } from '../lib/cli/online-command.js';
import { renderPlan } from '../lib/cli/rebalance-command.js';
import { renderTable } from '../lib/cli/render-table.js';
import { createShardKit, drive, loadConfig, type QueryPlan, SchemaMigrator, type ShardKit, ShardKitError } from '../lib/index.js';
import { resetOnlineMigration, settleRebalance } from './demo-reset.js';

/** users -> users_v2 (name split in two) through every phase, as `shardkit online ...` would drive it. */
async function onlineMigrationDemo(kit: ShardKit): Promise<void> {
  const runner = kit.onlineMigration('users_v2');
  section('online migration users -> users_v2: dual_write (writes to users are copied to users_v2)');
  await runner.start();
  await kit.table('users').where('id', 42).update({ name: 'Ada Lovelace' });
  console.log('users_v2 row 42 after a write to users:', await kit.forShard(kit.shardFor(42))('users_v2').where('id', 42).first('id', 'first_name', 'last_name'));

  section('backfill: keyset batches per shard, checkpointed, insert-if-absent');
  const { bar, options: backfill } = backfillOptions('backfill users_v2', { batch: 500 }, process.stdout, WIDTH);
  await drive(runner, { until: 'verify', backfill });
  bar.stop();

  section('verify: chunk checksums, then rows, repaired');
  await drive(runner, {
    until: 'shadow_read',
    onVerify: (report) => console.log(renderTable(['rows checked', 'differences', 'repaired', 'unrepaired'], [[report.rowsChecked, report.differences, report.repaired, report.unrepaired]], WIDTH)),
  });

  section('shadow_read: a sample of reads of users is compared with users_v2');
  for (let id = 1; id <= 200; id++) await kit.table('users').where('id', id).first();
  await kit.migrationCoordinator.settle();
  console.log(`${kit.migrationCoordinator.stats.shadowCompared} rows compared, ${kit.migrationCoordinator.stats.shadowMismatches} mismatches`);

  section('cutover: the application writes users_v2; writes are copied back to users until cleanup');
  await drive(runner, { until: 'cutover' });
  await kit.table('users_v2').where('id', 7).update({ first_name: 'Grace', last_name: 'Hopper' });
  console.log('users row 7 after a write to users_v2:', await kit.forShard(kit.shardFor(7))('users').where('id', 7).first('id', 'name'));

  section('cleanup: dual writing stops; retiring the old table needs --yes');
  await drive(runner, { until: 'cleanup' });
  for (const step of await runner.cleanup({ dryRun: true })) console.log(step);
  console.log(statusTables(await runner.status(), WIDTH));
}

/** Adds shard-5 (on standby until now) while the kit runs, and shows the rows per shard before and after. */
async function rebalanceDemo(kit: ShardKit): Promise<void> {
  const rowsPerShard = async () =>
    Promise.all(
      kit.shardNames.map(async (shard) => {
        const count = async (table: string) => Number(((await kit.forShard(shard)(table).count('* as n').first()) as { n: unknown }).n);
        return [shard, await count('users'), await count('orders')];
      }),
    );
  section('rebalance: adding shard-5 online (plan, dual write, backfill, verify, cutover, cleanup)');
  const before = await rowsPerShard();
  const rebalance = kit.rebalance();
  console.log(renderPlan(await rebalance.start({ add: ['shard-5'] }), WIDTH));
  const { bar, options: backfill } = backfillOptions('moving rows', {}, process.stdout, WIDTH);
  await drive(rebalance.phases, {
    until: 'cleanup',
    backfill,
    onPhase: (phase) => console.log(`-> ${phase}`),
    onVerify: (report) => console.log(`verify: ${report.rowsChecked} moving rows checked, ${report.differences} differences`),
  });
  bar.stop();
  await rebalance.cleanup();
  const after = new Map((await rowsPerShard()).map(([shard, users, orders]) => [shard, [users, orders]]));
  console.log(
    renderTable(
      ['shard', 'users before', 'orders before', 'users after', 'orders after'],
      before.map(([shard, users, orders]) => [shard!, users!, orders!, ...(after.get(shard!) ?? [])]),
    ),
  );
}

/** The demo's tables fit a terminal of this width. */
const WIDTH = process.stdout.isTTY ? process.stdout.columns : 100;
const USERS = 5000;
const ORDERS_PER_USER = 3;
const BATCH = 1000;

const started = performance.now();
const section = (title: string) => console.log(`\n== ${title}`);
const describePlan = (plan: QueryPlan) => {
  const { route } = plan;
  if (route.kind === 'one') return `one shard (${route.shard})`;
  if (route.kind === 'none') return 'no shard (no key can match)';
  return `${route.kind === 'all' ? 'every shard' : 'the owners'}: ${route.shards.join(', ')}`;
};

const config = await loadConfig();
const kit = await createShardKit(config);
try {
  console.log(`shardkit demo: ${kit.shardNames.length} shards`);
  console.log(
    renderTable(
      ['shard', 'node', 'where'],
      kit.config.shards.map((shard) => [shard.name, shard.primary.name, shard.primary.description]),
    ),
  );

  section('schema: migrations/ on every shard primary');
  const report = await new SchemaMigrator(kit).latest();
  await resetOnlineMigration(kit, 'users_v2');
  console.log(renderTable(['shard', 'applied migrations'], report.map((entry) => [entry.shard, entry.applied.join(', ')])));

  section(`writing ${USERS} users and ${USERS * ORDERS_PER_USER} orders`);
  // A previous run added shard-5: empty the tables and go back to the config's four shards.
  await settleRebalance(kit);
  await kit.allShards('orders').del();
  await kit.allShards('users').del();
  await kit.table('countries').del();
  await kit.rebalance().forget();
  const writeStart = performance.now();
  let seed = 7;
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  for (let first = 1; first <= USERS; first += BATCH) {
    const ids = Array.from({ length: Math.min(BATCH, USERS - first + 1) }, (_, index) => first + index);
    // One multi-row insert per batch; shardkit splits it into one insert per owning shard.
    await kit.table('users').insert(ids.map((id) => ({ id, name: `User ${id}`, email: `user${id}@example.com` })));
    await kit.table('orders').insert(
      ids.flatMap((userId) =>
        Array.from({ length: ORDERS_PER_USER }, (_, n) => ({
          user_id: userId,
          id: userId * 10 + n,
          amount_cents: 100 + Math.floor(random() * 9900),
          status: random() < 0.8 ? 'paid' : 'new',
        })),
      ),
    );
  }
  await kit.table('countries').insert([
    { code: 'NZ', name: 'New Zealand' },
    { code: 'PT', name: 'Portugal' },
  ]);
  console.log(`done in ${Math.round(performance.now() - writeStart)} ms (each batch split by shard key)`);

  section('rows per shard (counted on each shard directly)');
  const slots = kit.topology.ring.slotCounts();
  const perShard = await Promise.all(
    kit.shardNames.map(async (shard) => {
      const db = kit.forShard(shard);
      const [users] = await db('users').count('* as n');
      const [orders] = await db('orders').count('* as n');
      return { shard, users: Number(users?.n), orders: Number(orders?.n) };
    }),
  );
  console.log(
    renderTable(
      ['shard', 'slots', 'users', 'orders', 'share of users'],
      perShard.map((row) => [row.shard, slots.get(row.shard), row.users, row.orders, `${((100 * row.users) / USERS).toFixed(1)}%`]),
    ),
  );

  section('where keys live (slot = top 20 bits of xxh64 of the key)');
  const keys: unknown[] = [42, 42n, '42', 4711, 'alice@example.com', Buffer.from('cafe', 'hex')];
  console.log(
    renderTable(
      ['key', 'type', 'slot', 'shard'],
      keys.map((key) => [
        Buffer.isBuffer(key) ? `0x${key.toString('hex')}` : String(key),
        Buffer.isBuffer(key) ? 'Buffer' : typeof key,
        kit.topology.ring.slotOf(key),
        kit.shardFor(key),
      ]),
    ),
  );

  section("routed read: kit.table('users').where('id', 42)");
  const byId = kit.table('users').where('id', 42).first('id', 'name', 'email');
  console.log(`plan: ${describePlan(kit.explain(byId))}`);
  console.log(await byId);
  const ordersOf42 = kit
    .table('orders')
    .join('users', 'users.id', 'orders.user_id')
    .where('orders.user_id', 42)
    .select('users.name', 'orders.id', 'orders.amount_cents', 'orders.status');
  console.log(`a user's orders, joined on the user's shard; plan: ${describePlan(kit.explain(ordersOf42))}`);
  const orderRows = (await ordersOf42) as Record<string, unknown>[];
  console.log(
    renderTable(
      ['name', 'order', 'amount_cents', 'status'],
      orderRows.map((row) => [String(row.name), Number(row.id), Number(row.amount_cents), String(row.status)]),
    ),
  );

  section("fan-out: kit.table('users').whereIn('id', [1, 2, 3, 4, 5, 6])");
  const fanOut = kit.table('users').whereIn('id', [1, 2, 3, 4, 5, 6]).select('id', 'name');
  const fanOutPlan = kit.explain(fanOut);
  console.log(`plan: ${describePlan(fanOutPlan)}; keys per shard: ${JSON.stringify(fanOutPlan.keysByShard ?? {})}`);
  const fanOutRows = (await fanOut) as { id: unknown; name: string }[];
  console.log(renderTable(['id', 'name', 'shard'], fanOutRows.map((row) => [Number(row.id), row.name, kit.shardFor(row.id)])));

  section("all-shard read: kit.table('users').where('name', 'like', 'User 77%')");
  const scan = kit.table('users').where('name', 'like', 'User 77%').select('id', 'name');
  console.log(`plan: ${describePlan(kit.explain(scan))} (results concatenated)`);
  const scanned = (await scan) as { id: unknown }[];
  console.log(`${scanned.length} users found: ${scanned.map((row) => Number(row.id)).sort((a, b) => a - b).join(', ')}`);

  section('cross-shard top 5: the largest orders (each shard sends its top 5, a heap merges them)');
  const top = kit.table('orders').select('user_id', 'id', 'amount_cents').orderBy('amount_cents', 'desc').orderBy('id').limit(5);
  console.log(`plan: ${describePlan(kit.explain(top))}, merge: ${kit.explain(top).merge?.kind}`);
  const topRows = (await top) as Record<string, unknown>[];
  console.log(
    renderTable(
      ['user', 'order', 'amount_cents', 'shard'],
      topRows.map((row) => [Number(row.user_id), Number(row.id), Number(row.amount_cents), kit.shardFor(row.user_id)]),
    ),
  );

  section('aggregate by group across shards: orders per status (AVG merged as SUM / COUNT)');
  const byStatus = kit
    .table('orders')
    .select('status')
    .count('* as orders')
    .sum('amount_cents as total_cents')
    .avg('amount_cents as mean_cents')
    .groupBy('status')
    .orderBy('status');
  const statusRows = (await byStatus) as Record<string, unknown>[];
  console.log(
    renderTable(
      ['status', 'orders', 'total_cents', 'mean_cents'],
      statusRows.map((row) => [String(row.status), Number(row.orders), Number(row.total_cents), String(row.mean_cents)]),
    ),
  );

  section('keyset pagination: walking all users 1000 at a time, no OFFSET');
  let cursor: string | null = null;
  const pages: (string | number)[][] = [];
  do {
    const page: { rows: Record<string, unknown>[]; nextCursor: string | null } = await kit.paginate(kit.table('users').select('id', 'name'), {
      orderBy: [{ column: 'id' }],
      pageSize: 1000,
      cursor,
    });
    pages.push([pages.length + 1, page.rows.length, Number(page.rows[0]?.id), Number(page.rows.at(-1)?.id), page.nextCursor ? `${page.nextCursor.slice(0, 18)}...` : '(end)']);
    cursor = page.nextCursor;
  } while (cursor);
  console.log(renderTable(['page', 'rows', 'first id', 'last id', 'next cursor'], pages));

  section("read cache (in-process): kit.table('users', { cache: { ttlMs: 60000 } }), ended by the kit's own writes");
  const cachedRead = () => kit.table('users', { cache: { ttlMs: 60_000 } }).where('id', 42).first('name');
  const cacheRows: string[][] = [];
  const outcomeOf = async (label: string, read: () => PromiseLike<{ name: string }>) => {
    let outcome = 'no read';
    const listener = (event: { outcome: string }) => {
      outcome = event.outcome;
    };
    kit.on('cache', listener);
    const row = await read();
    kit.off('cache', listener);
    cacheRows.push([label, outcome, row.name]);
  };
  await outcomeOf('first read', cachedRead);
  await outcomeOf('same read again', cachedRead);
  await kit.table('users').where('id', 42).update({ name: 'Renamed through the kit' });
  await outcomeOf('after an update of key 42', cachedRead);
  console.log(renderTable(['read', 'cache', 'name'], cacheRows));
  console.log(`cache: ${JSON.stringify(kit.cacheStats)}`);

  await onlineMigrationDemo(kit);

  await rebalanceDemo(kit);

  section('guard rails');
  const refusals: [string, () => PromiseLike<unknown>][] = [
    ["kit.table('users').orderByRaw('lower(name)')", () => kit.table('users').orderByRaw('lower(name)')],
    ["kit.table('users').countDistinct('name')", () => kit.table('users').countDistinct('name')],
    ["kit.table('users').where('name', 'x').del()", () => kit.table('users').where('name', 'x').del()],
    ["kit.table('users').where('id', 1).update({ id: <a key on another shard> })", () => {
      const elsewhere = Array.from({ length: 50 }, (_, index) => index + 2).find((id) => kit.shardFor(id) !== kit.shardFor(1));
      return kit.table('users').where('id', 1).update({ id: elsewhere });
    }],
    ["kit.shardFor(1.5)", async () => kit.shardFor(1.5)],
  ];
  const outcomes: string[][] = [];
  for (const [label, attempt] of refusals) {
    try {
      await attempt();
      outcomes.push([label, 'ran (unexpected)']);
    } catch (error) {
      outcomes.push([label, error instanceof ShardKitError ? error.code : String(error)]);
    }
  }
  console.log(renderTable(['query', 'refused with'], outcomes));
} finally {
  await kit.close();
}
console.log(`\ndemo finished in ${((performance.now() - started) / 1000).toFixed(1)} s`);
