import { expect } from 'chai';
import { createShardKit, ScatterError, type ShardKit, ShardOverloadedError, ShardUnavailableError } from '../../lib/index.js';
import { eventually, ServerControl } from '../../scripts/local-cluster.js';
import { openFreshKit, TARGETS } from '../support/targets.js';

// Faults need shards on separate servers: the PostgreSQL cluster has them (the MariaDB shards
// share one server, so stopping "one shard" would stop both).
const target = TARGETS.find((candidate) => candidate.name === 'postgres cluster')!;
const RESET_MS = 1000;

describe('scatter faults on the postgres cluster', function () {
  this.timeout(60_000);
  let kit: ShardKit;
  let deadShard: string;
  let healthyShard: string;
  let primary: ServerControl;
  const keyOn = (shard: string) => Array.from({ length: 1000 }, (_, index) => index + 1).find((id) => kit.shardFor(id) === shard)!;

  before(async () => {
    kit = await openFreshKit({
      ...target,
      config: { ...target.config, breaker: { volumeThreshold: 2, errorThresholdPercentage: 50, resetTimeoutMs: RESET_MS } },
    });
    [healthyShard, deadShard] = kit.shardNames as [string, string];
    primary = new ServerControl(kit.topology.shard(deadShard).primary);
    const ids = Array.from({ length: 60 }, (_, index) => index + 1);
    await kit.table('users').insert(ids.map((id) => ({ id, name: `user ${id}`, email: `u${id}@example.com` })));
  });

  afterEach(async () => {
    await primary.start();
  });

  after(async () => {
    await kit?.close();
  });

  it('fails a scatter naming the dead shard, answers partially on request, opens the breaker, and recovers', async () => {
    await primary.kill();

    const error = await kit
      .table('users')
      .select('id')
      .orderBy('id')
      .then(
        () => undefined,
        (caught: unknown) => caught,
      );
    expect(error).to.be.instanceOf(ScatterError);
    expect((error as ScatterError).failures.map((failure) => failure.shard)).to.deep.equal([deadShard]);
    expect((error as ScatterError).succeeded).to.deep.equal([healthyShard]);

    const partial = await kit.gather<{ id: unknown }[]>(kit.table('users').select('id').orderBy('id'));
    expect(partial.complete).to.equal(false);
    expect(partial.missingShards.map((missing) => missing.shard)).to.deep.equal([deadShard]);
    const healthyIds = (await kit.forShard(healthyShard)('users').pluck('id')).map(Number).sort((a, b) => a - b);
    expect(partial.rows.map((row) => Number(row.id))).to.deep.equal(healthyIds);

    // The breaker has seen the node fail: it now fails fast, without the network.
    const deadKey = keyOn(deadShard);
    expect(await eventually(async () => {
      const failure = await kit.table('users').where('id', deadKey).first().catch((caught: unknown) => caught);
      return failure instanceof ShardUnavailableError;
    }, 5000)).to.equal(true);
    const started = performance.now();
    const fast = await kit.table('users').where('id', deadKey).first().catch((caught: unknown) => caught);
    const failFastMs = performance.now() - started;
    console.log(`      open breaker failed a query in ${failFastMs.toFixed(2)} ms`);
    expect(fast).to.be.instanceOf(ShardUnavailableError);
    // No network: an order of magnitude under a single round trip to a stopped server.
    expect(failFastMs).to.be.below(50);

    // Single-shard queries to the healthy shard do not notice.
    expect(await kit.table('users').where('id', keyOn(healthyShard)).first()).to.include({ name: `user ${keyOn(healthyShard)}` });

    await primary.start();
    const recovered = await eventually(async () => (await kit.table('users').select('id')).length === 60, 15_000);
    expect(recovered, 'the scatter answers in full after the restart').to.equal(true);
    const status = await kit.status();
    expect(status.nodes.find((node) => node.node === kit.topology.shard(deadShard).primary.config.name)?.breaker).to.equal('closed');
  });
});

describe('load shedding on the postgres cluster', function () {
  this.timeout(60_000);
  let kit: ShardKit;

  before(async () => {
    kit = await openFreshKit({ ...target, config: { ...target.config, loadShedding: { maxInFlight: 2, maxQueued: 4 } } });
  });

  after(async () => {
    await kit?.close();
  });

  it('sheds background work first, then normal, and runs everything it admits exactly once', async () => {
    const shard = kit.shardNames[0]!;
    const key = Array.from({ length: 100 }, (_, index) => index + 1).find((id) => kit.shardFor(id) === shard)!;
    let executed = 0;
    kit.on('query', (event) => {
      if (event.shard === shard && !event.error) executed++;
    });
    const slow = (priority: 'normal' | 'background' | 'critical', tag: string) =>
      kit
        .table('users', { priority })
        .where('id', key)
        .select(kit.forShard(shard).raw('pg_sleep(0.3)'), kit.forShard(shard).raw('? as tag', [tag]))
        .then(
          (rows: unknown[]) => ({ tag, priority, ok: true as const, rows }),
          (error: unknown) => ({ tag, priority, ok: false as const, error }),
        );
    // Two run, then three background arrive (room for two: background may fill half the queue),
    // then four normal: the queue fills, and each further normal query evicts a background one.
    const running = [slow('normal', 'n1'), slow('normal', 'n2')];
    const background = [slow('background', 'b1'), slow('background', 'b2'), slow('background', 'b3')];
    const normal = [slow('normal', 'n3'), slow('normal', 'n4'), slow('normal', 'n5'), slow('normal', 'n6')];
    const outcomes = await Promise.all([...running, ...background, ...normal]);

    const shed = outcomes.filter((outcome) => !outcome.ok);
    expect(shed.map((outcome) => outcome.tag).sort()).to.deep.equal(['b1', 'b2', 'b3']);
    for (const outcome of shed) {
      const error = (outcome as { error: unknown }).error as ShardOverloadedError;
      expect(error).to.be.instanceOf(ShardOverloadedError);
      expect(error.retryAfterMs).to.be.greaterThan(0);
      expect(error.priority).to.equal('background');
    }
    expect(outcomes.filter((outcome) => outcome.ok).map((outcome) => outcome.tag).sort()).to.deep.equal(['n1', 'n2', 'n3', 'n4', 'n5', 'n6']);
    expect(executed, 'every admitted query ran once').to.equal(6);

    // Full of normal work, the node sheds a normal query too, but still admits a critical one by evicting it.
    const more = [slow('normal', 'm1'), slow('normal', 'm2'), ...[1, 2, 3, 4].map((n) => slow('normal', `q${n}`))];
    const overflow = await slow('normal', 'overflow');
    const critical = slow('critical', 'c1');
    const settled = await Promise.all([...more, critical]);
    expect(overflow.ok).to.equal(false);
    expect(settled.find((outcome) => outcome.tag === 'c1')?.ok).to.equal(true);
    expect(settled.filter((outcome) => !outcome.ok).map((outcome) => outcome.tag)).to.deep.equal(['q4']);
  });

  it('sheds on arrival the callers a long queue would keep past their deadline, telling each when to come back', async () => {
    const deep = await createShardKit({ ...target.config, loadShedding: { maxInFlight: 2, maxQueued: 1000 } });
    try {
      const shard = deep.shardNames[0]!;
      const key = Array.from({ length: 100 }, (_, index) => index + 1).find((id) => deep.shardFor(id) === shard)!;
      // pg_sleep in the select list runs once per row: the row must exist.
      await deep.table('users').insert({ id: key, name: 'slow', email: `slow${key}@example.com` }).onConflict('id').merge();
      const read = () => {
        const started = performance.now();
        return deep
          .table('users', { timeoutMs: 1000 })
          .where('id', key)
          .select(deep.forShard(shard).raw('pg_sleep(0.05)'))
          .then(
            () => ({ ok: true, ms: performance.now() - started, code: undefined }),
            (error: { code?: string }) => ({ ok: false, ms: performance.now() - started, code: error.code }),
          );
      };
      // Teach the node its hold time, then 200 callers at once: two run at a time, 50 ms each.
      for (let call = 0; call < 20; call++) await read();
      const outcomes = await Promise.all(Array.from({ length: 200 }, read));
      const served = outcomes.filter((outcome) => outcome.ok);
      const shedAtOnce = outcomes.filter((outcome) => outcome.code === 'SHARD_OVERLOADED');
      const slowest = Math.max(...outcomes.map((outcome) => outcome.ms));
      console.log(`      200 callers, 2 slots: ${served.length} served, ${shedAtOnce.length} shed on arrival, ${outcomes.length - served.length - shedAtOnce.length} timed out; slowest answer ${Math.round(slowest)} ms (deadline 1000)`);
      expect(served.length).to.be.greaterThan(20);
      expect(shedAtOnce.length).to.be.greaterThan(100);
      expect(Math.max(...shedAtOnce.map((outcome) => outcome.ms))).to.be.below(200);
      expect(slowest).to.be.below(1000 + 300);
    } finally {
      await deep.close();
    }
  });

  it("asks a shard that shed a scatter's read again within the deadline, and fails the scatter only when the deadline leaves no room", async () => {
    const shard = kit.shardNames[0]!;
    const key = Array.from({ length: 100 }, (_, index) => index + 1).find((id) => kit.shardFor(id) === shard)!;
    await kit.table('users').insert({ id: key, name: 'scattered', email: `s${key}@example.com` }).onConflict('id').merge();
    const shedOn: string[] = [];
    kit.on('query', (event) => {
      if (event.error === 'SHARD_OVERLOADED') shedOn.push(event.shard);
    });
    // Two running and four queued on one shard: the next normal read there finds no room.
    const saturate = () =>
      Array.from({ length: 6 }, () => kit.table('users').where('id', key).select(kit.forShard(shard).raw('pg_sleep(0.3)')).catch((error: unknown) => error));
    const busy = saturate();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const started = performance.now();
    const rows = await kit.table('users', { timeoutMs: 5000 }).where('name', 'scattered').select('id');
    console.log(`      the scatter answered after ${Math.round(performance.now() - started)} ms, its read shed ${shedOn.length} time(s) on the saturated shard first`);
    expect(rows.map((row: { id: unknown }) => Number(row.id))).to.include(key);
    // Each saturating read ran, or (when the kit's own background reads held a slot as they came) was shed on arrival.
    const busyOutcomes = await Promise.all(busy);
    expect(busyOutcomes.filter((outcome) => outcome instanceof Error).map((outcome) => (outcome as { code?: string }).code)).to.satisfy((codes: unknown[]) => codes.every((code) => code === 'SHARD_OVERLOADED'));
    expect(busyOutcomes.filter((outcome) => !(outcome instanceof Error)).length, 'saturating reads served').to.be.greaterThan(0);

    // With a deadline shorter than the node's estimated wait, the scatter fails at once, naming the shard.
    const again = saturate();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const failed = await kit.table('users', { timeoutMs: 100 }).where('name', 'scattered').select('id').catch((error: unknown) => error);
    expect(failed).to.be.instanceOf(ScatterError);
    expect((failed as ScatterError).failures.map((failure) => failure.error.code)).to.include('SHARD_OVERLOADED');
    await Promise.all(again);
  });
});
