import { execFile } from 'node:child_process';
import { expect } from 'chai';
import { type CacheEvent, createShardKit, type DegradationEvent, DegradedError, type QueryEvent, type ShardKit, type ShardKitConfig } from '../../lib/index.js';
import { main } from '../../lib/cli/main.js';
import { DEGRADATION_TABLE } from '../../lib/kit/degradation-override.js';
import { ACKS_TABLE, MIGRATIONS_TABLE, MISMATCHES_TABLE } from '../../lib/migrations/online/control-store.js';
import { OUTBOX_TABLE } from '../../lib/migrations/online/sync-outbox.js';
import { usersV2 } from '../../migrations/online/users-v2.js';
import { eventually, ServerControl } from '../../scripts/local-cluster.js';
import { openFreshKit, TARGETS } from '../support/targets.js';

const target = TARGETS.find((candidate) => candidate.name === 'postgres cluster')!;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const POLL_MS = 200;
const HOLD_MS = 700;
const TTL_MS = 300;

/**
 * Thresholds small enough for statements of pg_sleep: level 1 above a p99 of 60 ms, level 2
 * above 180 ms, level 3 above 400 ms (error rates high enough that latency alone decides).
 */
const config: ShardKitConfig = {
  ...target.config,
  tables: { ...target.config.tables, orders: { shardKey: 'user_id', cache: { ttlMs: TTL_MS, jitter: 0 } } },
  onlineMigrations: [usersV2],
  migrations: { pollIntervalMs: POLL_MS, leaseMs: 3000 },
  degradation: {
    enabled: true,
    windowMs: 1000,
    evaluateEveryMs: 100,
    minSamples: 5,
    minHoldMs: HOLD_MS,
    thresholds: [
      { p99Ms: 60, errorRate: 0.9 },
      { p99Ms: 180, errorRate: 0.95 },
      { p99Ms: 400, errorRate: 0.99 },
    ],
  },
};

/** What a call did: its answer, or the code of its error (and the error). */
async function attempt<T>(call: () => PromiseLike<T>): Promise<{ value?: T; code?: string; error?: unknown }> {
  try {
    return { value: await call() };
  } catch (error) {
    return { code: (error as { code?: string }).code ?? 'unknown', error };
  }
}

/** The query events of `table` on `shard` while `call` runs. */
async function servedBy(kit: ShardKit, shard: string, call: () => PromiseLike<unknown>): Promise<QueryEvent[]> {
  const seen: QueryEvent[] = [];
  const listen = (event: QueryEvent) => event.shard === shard && event.table === 'orders' && seen.push(event);
  kit.on('query', listen);
  try {
    await call();
  } finally {
    kit.off('query', listen);
  }
  return seen;
}

/** The cache outcomes of `call`. */
async function cacheOutcomes(kit: ShardKit, call: () => PromiseLike<unknown>): Promise<{ value: unknown; outcomes: string[] }> {
  const outcomes: string[] = [];
  const listen = (event: CacheEvent) => event.table === 'orders' && outcomes.push(event.outcome);
  kit.on('cache', listen);
  try {
    return { value: await call(), outcomes };
  } finally {
    kit.off('cache', listen);
  }
}

async function dropControlTables(kit: ShardKit): Promise<void> {
  const control = kit.forShard(kit.config.migrations.controlShard);
  for (const table of [MIGRATIONS_TABLE, ACKS_TABLE, MISMATCHES_TABLE, DEGRADATION_TABLE]) await control.schema.dropTableIfExists(table);
  for (const shard of kit.shardNames) await kit.forShard(shard).schema.dropTableIfExists(OUTBOX_TABLE);
}

describe('degradation levels on the postgres cluster (real signal, override on the control database)', function () {
  this.timeout(60_000);
  let a: ShardKit;
  let b: ShardKit;
  let replica: ServerControl;
  /** Keys: the slow statements' on pg-a; the cache's and the replica reads' on pg-b. */
  let slowKey: number;
  let cacheKey: number;
  let replicaKey: number;
  const events: { kit: 'a' | 'b'; at: number; event: DegradationEvent }[] = [];
  /** Load loops of the running test: stopped after it, whatever its outcome. */
  const loops: { running: boolean; loading: boolean } = { running: false, loading: false };

  before(async () => {
    const base = await openFreshKit({ name: 'base', config: target.config });
    await dropControlTables(base);
    await base.close();
    [a, b] = await Promise.all([createShardKit(config), createShardKit(config)]);
    a.on('degradation', (event) => events.push({ kit: 'a', at: performance.now(), event }));
    b.on('degradation', (event) => events.push({ kit: 'b', at: performance.now(), event }));
    const ids = Array.from({ length: 40 }, (_, index) => index + 1);
    await a.table('users').insert(ids.map((id) => ({ id, name: `user ${id}`, email: `u${id}@example.com` })));
    await a.table('orders').insert(ids.map((id) => ({ user_id: id, id: id * 10, amount_cents: 100 + id })));
    slowKey = ids.find((id) => a.shardFor(id) === 'pg-a')!;
    [cacheKey, replicaKey] = ids.filter((id) => a.shardFor(id) === 'pg-b') as [number, number];
    replica = new ServerControl(a.topology.shard('pg-b').replicas[0]!);
    const runner = a.onlineMigration('users_v2');
    await runner.start();
    await runner.advance({ waitForAcksMs: 5000 });
  });

  afterEach(async () => {
    loops.running = false;
    loops.loading = false;
    await replica?.resumeReplay().catch(() => undefined);
  });

  after(async () => {
    await a?.clearDegradation().catch(() => undefined);
    if (a) await dropControlTables(a).catch(() => undefined);
    await Promise.all([a?.close(), b?.close()]);
  });

  /** Waits for the pg-b replica to lag past `ms`, replay paused and the primary written to. */
  async function lagReplica(kit: ShardKit, ms: number): Promise<number> {
    await replica.pauseReplay();
    await kit.table('orders').where({ user_id: replicaKey }).update({ status: 'paid' });
    const lagOf = async () => (await kit.status()).nodes.find((node) => node.node === 'pg-b-replica1')?.lagMs ?? 0;
    expect(await eventually(async () => (await lagOf()) > ms, 10_000), 'the replica lags').to.equal(true);
    return lagOf();
  }

  const replicaRead = (kit: ShardKit, priority: 'normal' | 'critical') =>
    servedBy(kit, 'pg-b', () => kit.table('orders', { read: 'replica', maxLagMs: 200, cache: false, priority }).where('user_id', replicaKey).first());
  const scatter = (kit: ShardKit, priority: 'normal' | 'critical') => attempt(() => kit.table('users', { priority }).select('id'));

  it('follows a real health signal up level by level under slow statements, applies each level, and steps down with hysteresis', async () => {
    const runner = a.onlineMigration('users_v2');
    expect((await runner.status()).phase).to.equal('backfill');
    // Light normal traffic throughout: the signal's fast calls.
    loops.running = true;
    const fast = { ok: 0, failed: 0 };
    const fastLoop = (async () => {
      while (loops.running) {
        const outcome = await attempt(() => a.table('users').where('id', slowKey).first());
        fast[outcome.code ? 'failed' : 'ok']++;
        await sleep(20);
      }
    })();
    expect(await eventually(() => a.degradation.level === 0 && a.degradation.signal.samples >= 5, 5000), 'level 0 before the load').to.equal(true);

    // Level 0: a background read and a scatter are served; an expired entry is read again; a lagging replica is not used.
    expect((await attempt(() => a.table('orders', { priority: 'background', cache: false }).where('user_id', cacheKey).first())).code).to.equal(undefined);
    expect((await scatter(a, 'normal')).value).to.have.length(40);
    const read = () => a.table('orders').where('user_id', cacheKey).first();
    await read();
    await sleep(TTL_MS + 50);
    const atZero = await cacheOutcomes(a, read);
    expect(atZero.outcomes, 'at level 0 an expired entry is read again').to.deep.equal(['miss']);
    // Written past the kit: only a read of the database sees it.
    await a.forShard('pg-b')('orders').where({ user_id: cacheKey }).update({ amount_cents: 999 });
    const lagAtZero = await lagReplica(a, 300);
    const bypassed = await replicaRead(a, 'normal');
    expect(bypassed.map((event) => event.role), `replica at ${lagAtZero} ms lag, bound 200 ms`).to.deep.equal(['primary']);

    // The load: 6 normal callers of slow statements on pg-a, each stage slower.
    let sleepMs = 100;
    loops.loading = true;
    const load = { ok: 0, failed: 0 };
    const slowLoop = async () => {
      while (loops.loading) {
        const outcome = await attempt(() => a.table('orders', { cache: false }).where('user_id', slowKey).select(a.forShard('pg-a').raw(`pg_sleep(${sleepMs / 1000})`)));
        load[outcome.code ? 'failed' : 'ok']++;
      }
    };
    const slow = Array.from({ length: 6 }, slowLoop);
    const reached = (level: number) => eventually(() => a.degradation.level === level, 6000);

    // Level 1: background work is shed (a routed read, a transaction at the gate), the backfill pauses.
    expect(await reached(1), `level 1 at ${sleepMs} ms statements (${JSON.stringify(a.degradation.signal)})`).to.equal(true);
    const backgroundRead = await attempt(() => a.table('orders', { priority: 'background', cache: false }).where('user_id', cacheKey).first());
    expect(backgroundRead.error).to.be.instanceOf(DegradedError);
    expect(backgroundRead.error).to.deep.include({ code: 'DEGRADED', level: 1, refused: 'background', retryable: true });
    const backgroundTransaction = await attempt(() => a.transaction(cacheKey, (trx) => trx.table('orders').where('user_id', cacheKey).first(), { priority: 'background' }));
    expect(backgroundTransaction.error, String(backgroundTransaction.error)).to.be.instanceOf(DegradedError);
    expect(backgroundTransaction.error).to.deep.include({ shard: 'pg-b', node: 'pg-b-primary', refused: 'background' });
    expect((await attempt(() => a.table('orders', { cache: false }).where('user_id', cacheKey).first())).code, 'normal work is served').to.equal(undefined);
    expect((await scatter(a, 'normal')).value, 'level 1 still scatters').to.have.length(40);
    const throttled: (string | undefined)[] = [];
    const pauses = new Set<string>();
    a.on('throttle', (event) => throttled.push(event.reason));
    const backfill = runner.backfill({ batchSize: 10, onProgress: (progress) => progress.throttled && pauses.add(progress.throttled) });
    expect(await eventually(() => throttled.length > 0, 3000), 'the backfill is throttled').to.equal(true);
    expect(throttled[0]).to.equal('degradation level 1 (signal)');

    // Level 2: replica reads accept the lag for normal callers, not critical ones; expired entries answer normal callers.
    sleepMs = 250;
    expect(await reached(2), `level 2 at ${sleepMs} ms statements (${JSON.stringify(a.degradation.signal)})`).to.equal(true);
    const relaxed = await replicaRead(a, 'normal');
    const strict = await replicaRead(a, 'critical');
    expect(relaxed.map((event) => event.role), 'a normal replica read at level 2').to.deep.equal(['replica']);
    expect(relaxed[0]!.lagMs).to.be.greaterThan(200);
    expect(strict.map((event) => event.role), 'a critical replica read at level 2').to.deep.equal(['primary']);
    await replica.resumeReplay();
    const stale = await cacheOutcomes(a, read);
    const fresh = await cacheOutcomes(a, () => a.table('orders', { priority: 'critical' }).where('user_id', cacheKey).first());
    expect(stale.outcomes, 'a normal cached read at level 2').to.deep.equal(['stale']);
    expect(stale.value, 'the value cached before the write past the kit').to.include({ user_id: String(cacheKey), amount_cents: 100 + cacheKey });
    expect((fresh.value as { amount_cents: number }).amount_cents, 'a critical cached read at level 2').to.equal(999);

    // Level 3: a scatter is refused for normal callers and answered for critical ones; one shard is still served.
    sleepMs = 500;
    expect(await reached(3), `level 3 at ${sleepMs} ms statements (${JSON.stringify(a.degradation.signal)})`).to.equal(true);
    const refused = await scatter(a, 'normal');
    expect(refused.error).to.be.instanceOf(DegradedError);
    expect(refused.error).to.deep.include({ level: 3, refused: 'scatter' });
    expect((await attempt(() => a.gather(a.table('users').select('id')))).code, 'kit.gather too').to.equal('DEGRADED');
    expect((await scatter(a, 'critical')).value, 'a critical scatter at level 3').to.have.length(40);
    expect((await attempt(() => a.table('users').where('id', cacheKey).first())).code, 'one shard at level 3').to.equal(undefined);
    const status = await a.status();
    expect(status.degradation).to.deep.include({ level: 3, source: 'signal' });
    expect(status.degradation!.effects).to.deep.include({ scatter: 'critical-only', shedBackground: true });

    // The load ends: the level falls one step per hold, to 0; the backfill resumes and finishes.
    const loadEnded = performance.now();
    loops.loading = false;
    await Promise.all(slow);
    expect(await reached(0), 'back to level 0').to.equal(true);
    const recoveredMs = performance.now() - loadEnded;
    await backfill;
    loops.running = false;
    await fastLoop;
    const signal = events.filter((entry) => entry.kit === 'a' && entry.event.source === 'signal');
    const steps = signal.map((entry) => [entry.event.from, entry.event.to]);
    const downs = signal.filter((entry) => entry.event.to < entry.event.from);
    const gaps = downs.slice(1).map((entry, index) => Math.round(entry.at - downs[index]!.at));
    const backfilled = (await runner.status()).backfill.reduce((total, unit) => total + unit.rows, 0);
    console.log(`      signal: ${steps.map(([from, to]) => `${from}->${to}`).join(', ')}; p99 at the moves: ${signal.map((entry) => entry.event.p99Ms).join(', ')} ms`);
    console.log(`      slow statements ${load.ok} (${load.failed} failed), fast reads ${fast.ok} (${fast.failed} failed); back to 0 ${Math.round(recoveredMs)} ms after the load, steps down ${gaps.join(', ')} ms apart`);
    console.log(`      level 1: background read and transaction refused (DEGRADED), backfill paused (${[...pauses].join('; ')}), then ${backfilled} rows copied`);
    console.log(`      level 2: normal replica read on the replica at ${Math.round(relaxed[0]!.lagMs!)} ms lag, critical on the primary; cached read stale (${stale.outcomes}), critical fresh (${fresh.outcomes})`);
    console.log(`      level 3: normal scatter refused (${refused.code}), critical scatter answered 40 rows`);
    expect(steps).to.deep.equal([
      [0, 1],
      [1, 2],
      [2, 3],
      [3, 2],
      [2, 1],
      [1, 0],
    ]);
    for (const gap of gaps) expect(gap, 'a hold between steps down').to.be.at.least(HOLD_MS - 10);
    expect(throttled.at(-1), 'the backfill resumed').to.equal(undefined);
    expect([...pauses].some((reason) => reason.startsWith('degradation level'))).to.equal(true);
    expect(backfilled).to.equal(40);
    expect(fast.failed).to.equal(0);
  });

  it('follows an override set on another instance through the control database, each level served or refused, until cleared or expired', async () => {
    const followed: Record<string, number> = {};
    const setAndFollow = async (level: number, options: { reason?: string; forMs?: number } = {}) => {
      const started = performance.now();
      await a.setDegradation(level, { reason: `test level ${level}`, ...options });
      expect(a.degradation).to.deep.include({ level, source: 'override' });
      expect(await eventually(() => b.degradation.level === level && b.degradation.source === 'override', 3000), `b follows level ${level}`).to.equal(true);
      followed[`set ${level}`] = Math.round(performance.now() - started);
    };
    expect(b.degradation).to.deep.include({ level: 0, source: 'signal' });

    await setAndFollow(1);
    const background = await attempt(() => b.table('orders', { priority: 'background', cache: false }).where('user_id', cacheKey).first());
    expect(background.error).to.deep.include({ code: 'DEGRADED', level: 1, refused: 'background' });
    expect((await attempt(() => b.table('orders', { cache: false }).where('user_id', cacheKey).first())).code).to.equal(undefined);
    expect(b.degradation.effects.pauseBackfill).to.equal(true);
    expect((await scatter(b, 'normal')).value).to.have.length(40);

    // Level 2: b's cached entry answers past its TTL, its replica reads accept the lag.
    const read = () => b.table('orders').where('user_id', cacheKey).first();
    const filled = (await read()) as { amount_cents: number };
    await a.forShard('pg-b')('orders').where({ user_id: cacheKey }).update({ amount_cents: 1234 });
    await sleep(TTL_MS + 50);
    await setAndFollow(2);
    const stale = await cacheOutcomes(b, read);
    expect(stale).to.deep.include({ outcomes: ['stale'] });
    expect((stale.value as { amount_cents: number }).amount_cents).to.equal(filled.amount_cents);
    expect(((await b.table('orders', { priority: 'critical' }).where('user_id', cacheKey).first()) as { amount_cents: number }).amount_cents).to.equal(1234);
    const lag = await lagReplica(b, 300);
    expect((await replicaRead(b, 'normal')).map((event) => event.role)).to.deep.equal(['replica']);
    expect((await replicaRead(b, 'critical')).map((event) => event.role)).to.deep.equal(['primary']);
    await replica.resumeReplay();

    await setAndFollow(3);
    const refused = await scatter(b, 'normal');
    expect(refused.error).to.deep.include({ code: 'DEGRADED', level: 3, refused: 'scatter' });
    expect((refused.error as DegradedError).retryAfterMs).to.be.greaterThan(0);
    expect((await scatter(b, 'critical')).value).to.have.length(40);

    // Level 0 forced: nothing degraded, whatever the signal says; clear: back to the signal.
    await setAndFollow(0);
    expect((await scatter(b, 'normal')).value).to.have.length(40);
    const clearedAt = performance.now();
    await a.clearDegradation();
    expect(await eventually(() => b.degradation.source === 'signal', 3000)).to.equal(true);
    followed.clear = Math.round(performance.now() - clearedAt);

    // An override that expires by itself.
    await setAndFollow(3, { forMs: 600 });
    const expiring = performance.now();
    expect(await eventually(() => b.degradation.source === 'signal' && b.degradation.level === 0, 3000), 'the override expires').to.equal(true);
    const expiredAfterMs = Math.round(performance.now() - expiring);

    const overrides = events.filter((entry) => entry.kit === 'b' && entry.event.source === 'override').map((entry) => `${entry.event.from}->${entry.event.to}`);
    console.log(`      b followed a's override within ${JSON.stringify(followed)} ms (poll ${POLL_MS} ms); expired ${expiredAfterMs} ms after a 600 ms override`);
    console.log(`      b's override moves: ${overrides.join(', ')}; level 2 served a stale cached value and read the replica at ${Math.round(lag)} ms lag; level 3 refused its scatter`);
    for (const [what, ms] of Object.entries(followed)) expect(ms, what).to.be.below(POLL_MS + 250);
    expect(overrides).to.deep.equal(['0->1', '1->2', '2->3', '3->0', '0->3']);
  });

  it('is driven by shardkit degrade set / status / clear on the command line', async () => {
    // The built command once, as an operator runs it; then the same commands in this process (each spawn costs seconds).
    const set = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, ['bin/shardkit.js', '--config', 'shards.cluster.config.ts', 'degrade', 'set', '2', '--reason', 'from the CLI', '--for', '10m', '--json'], (error, stdout, stderr) =>
        resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
    expect(set.code, set.stderr).to.equal(0);
    const { override } = JSON.parse(set.stdout);
    expect(override).to.deep.include({ level: 2, reason: 'from the CLI' });
    expect(override.expiresAt - override.setAt).to.equal(600_000);
    expect(await eventually(() => b.degradation.level === 2 && b.degradation.source === 'override', 3000)).to.equal(true);
    const cli = async (...args: string[]) => {
      const out: string[] = [];
      const err: string[] = [];
      const code = await main(['--config', 'shards.cluster.config.ts', ...args], { out: (text) => out.push(text), err: (text) => err.push(text), columns: 80, progress: process.stderr });
      return { code, stdout: out.join('\n'), stderr: err.join('\n') };
    };
    const status = await cli('degrade', 'status');
    expect(status.code, status.stderr).to.equal(0);
    expect(status.stdout).to.contain('level 2 of 3, set by an override').and.to.contain('reason:  from the CLI');
    for (const line of status.stdout.split('\n')) expect(line.length, line).to.be.at.most(80);
    const json = JSON.parse((await cli('degrade', 'status', '--json')).stdout);
    expect(json).to.deep.include({ level: 2, source: 'override' });
    expect(json.levels).to.have.length(4);
    expect((await cli('status', '--json')).stdout).to.contain('"degradation"');
    expect((await cli('degrade', 'set', '7')).code, 'a level the config does not have').to.equal(2);
    expect((await cli('degrade', 'set', '1', '--for', '10')).code, 'a duration without a unit').to.equal(2);
    const cleared = await cli('degrade', 'clear');
    expect(cleared.code, cleared.stderr).to.equal(0);
    expect(await eventually(() => b.degradation.source === 'signal', 3000)).to.equal(true);
    console.log(`      ${status.stdout.split('\n')[0]}; ${cleared.stdout.trim()}`);
  });
});
