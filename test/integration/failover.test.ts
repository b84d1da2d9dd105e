import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect } from 'chai';
import knexModule, { type Knex } from 'knex';
import { createShardKit, type ShardKit, type ShardKitConfig } from '../../lib/index.js';
import { rowOf } from '../../lib/dialect/dialect-adapter.js';
import { WriteMarker } from '../../lib/engine/write-markers.js';
import type { FailoverEvent } from '../../lib/kit/primary-failover.js';
import { eventually, ServerControl } from '../../scripts/local-cluster.js';
import clusterPostgres, { failover as clusterFailover, failoverMariadb as clusterFailoverMariadb, mariadb as clusterMariadb } from '../../shards.cluster.config.js';
import { openFreshKit } from '../support/targets.js';

const run = promisify(execFile);
const tuning: Partial<ShardKitConfig> = {
  failover: { holdMs: 10_000, probeIntervalMs: 100, pollIntervalMs: 300 },
  breaker: { volumeThreshold: 2, resetTimeoutMs: 500 },
  lagMonitor: { intervalMs: 100, timeoutMs: 500 },
};

/** A failover pair of the local cluster and how to look at its servers past shardkit. */
interface FailoverTarget {
  name: string;
  config: ShardKitConfig;
  shard: string;
  /** The control shard's primary: where switches are recorded. */
  control: Connection;
  primary: Connection;
  replica: Connection;
  /** What the fenced old primary answers to the application's write after a planned switch (PostgreSQL only). */
  plannedRefusal?: string;
}

interface Connection {
  client: 'pg' | 'mysql2';
  port: number;
  database: string;
}

const TARGETS: FailoverTarget[] = [
  {
    name: 'postgres cluster (pg-c, a synchronous replica)',
    config: { ...clusterFailover, ...tuning },
    shard: 'pg-c',
    control: { client: 'pg', port: 54411, database: 'shardkit' },
    primary: { client: 'pg', port: 54431, database: 'shardkit' },
    replica: { client: 'pg', port: 54432, database: 'shardkit' },
    plannedRefusal: '25006',
  },
  {
    name: 'mariadb cluster (maria-c, a semi-synchronous replica)',
    config: { ...clusterFailoverMariadb, ...tuning },
    shard: 'maria-c',
    control: { client: 'mysql2', port: 33611, database: 'shardkit_1' },
    primary: { client: 'mysql2', port: 33631, database: 'shardkit_c' },
    replica: { client: 'mysql2', port: 33632, database: 'shardkit_c' },
  },
];

/** A write that was acknowledged, or failed, and how long the caller waited. */
interface WriteOutcome {
  id: number;
  instance: number;
  startedAt: number;
  ms: number;
  error?: string;
}

/**
 * Closed-loop writers and primary readers on `SHARD` through each kit, until stop(); and per kit
 * one counter, an order's amount_cents incremented by one per acknowledged write: a write applied
 * twice, or lost, makes it differ from the count.
 */
function traffic(kits: ShardKit[], ids: number[], writersPerKit: number, counterUser: number) {
  const writes: WriteOutcome[] = [];
  const increments = kits.map(() => 0);
  const acknowledged: number[] = [];
  const readFailures: string[] = [];
  let reads = 0;
  let next = 0;
  let running = true;
  const writer = async (kit: ShardKit, instance: number) => {
    while (running) {
      const id = ids[next++]!;
      const startedAt = performance.now();
      try {
        await kit.table('users').insert({ id, name: `user ${id}`, email: `u${id}@example.com` });
        acknowledged.push(id);
        writes.push({ id, instance, startedAt, ms: performance.now() - startedAt });
      } catch (error) {
        writes.push({ id, instance, startedAt, ms: performance.now() - startedAt, error: `${(error as { code?: string }).code}: ${(error as Error).message}` });
      }
      await pause(5);
    }
  };
  const reader = async (kit: ShardKit) => {
    while (running) {
      const id = acknowledged[Math.floor(Math.random() * acknowledged.length)];
      if (id !== undefined) {
        const row = await kit
          .table('users', { read: 'primary' })
          .where('id', id)
          .first()
          .catch((error: Error) => error);
        if (row instanceof Error || Number(row?.id) !== id) readFailures.push(row instanceof Error ? row.message : `row ${id} missing`);
        else reads++;
      }
      await pause(10);
    }
  };
  const counter = async (kit: ShardKit, instance: number) => {
    while (running) {
      const startedAt = performance.now();
      try {
        await kit.table('orders').where({ user_id: counterUser, id: instance }).increment('amount_cents', 1);
        increments[instance]!++;
        writes.push({ id: -1, instance, startedAt, ms: performance.now() - startedAt });
      } catch (error) {
        writes.push({ id: -1, instance, startedAt, ms: performance.now() - startedAt, error: `${(error as { code?: string }).code}: ${(error as Error).message}` });
      }
      await pause(5);
    }
  };
  const loops = kits.flatMap((kit, instance) => [...Array.from({ length: writersPerKit }, () => writer(kit, instance)), reader(kit), counter(kit, instance)]);
  return {
    writes,
    increments,
    acknowledged,
    readFailures,
    get reads() {
      return reads;
    },
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A knex straight to one server as the application user, past shardkit (to look at what it holds). */
function direct({ client, port, database }: Connection): Knex {
  return knexModule.knex({ client, connection: { host: '127.0.0.1', port, user: 'shardkit', password: 'shardkit-local-test', database }, pool: { min: 0, max: 1 } });
}

async function idsOn(db: Knex, ids: number[]): Promise<Set<number>> {
  const found = new Set<number>();
  for (let start = 0; start < ids.length; start += 1000) {
    for (const row of await db('users').whereIn('id', ids.slice(start, start + 1000)).select('id')) found.add(Number(row.id));
  }
  return found;
}

for (const target of TARGETS) describe(`primary failover on the ${target.name}`, function () {
  this.timeout(120_000);
  const { config, shard: SHARD } = target;
  let kits: ShardKit[] = [];
  let events: FailoverEvent[][] = [];
  let ids: number[];
  let counterUser: number;
  const primaryServer = () => new ServerControl(kits[0]!.topology.shard(SHARD).failover.configured);
  const replicaServer = () => new ServerControl(kits[0]!.topology.shard(SHARD).failover.candidates[0]!);

  /** Whether the test promoted the replica: the pair is rebuilt after it. */
  let promotedPair = true;

  beforeEach(async () => {
    if (promotedPair) await run('bash', ['scripts/cluster.sh', 'rebuild', SHARD]);
    promotedPair = false;
    // The pair is as configured: a switch an earlier test recorded is not true any more.
    const control = direct(target.control);
    if (await control.schema.hasTable('shardkit_primaries')) await control('shardkit_primaries').where({ shard: SHARD }).delete();
    await control.destroy();
    kits = [await openFreshKit({ name: 'failover', config })];
    kits.push(await createShardKit(config));
    events = kits.map((kit) => {
      const seen: FailoverEvent[] = [];
      kit.on('failover', (event) => seen.push(event));
      return seen;
    });
    ids = Array.from({ length: 200_000 }, (_, index) => index + 1).filter((id) => kits[0]!.shardFor(id) === SHARD);
    counterUser = ids.pop()!;
    await kits[0]!.table('orders').insert(kits.map((_, instance) => ({ user_id: counterUser, id: instance, amount_cents: 0 })));
  });

  afterEach(async () => {
    await Promise.all(kits.map((kit) => kit.close()));
  });

  after(async () => {
    if (promotedPair) await run('bash', ['scripts/cluster.sh', 'rebuild', SHARD]);
  });

  /** Each kit's counter equals its acknowledged increments: none applied twice, none lost. */
  async function expectCounters(increments: number[]): Promise<void> {
    const promoted = direct(target.replica);
    try {
      const rows = await promoted('orders').where({ user_id: counterUser }).orderBy('id').select('amount_cents');
      console.log(`      counters: ${rows.map((row) => row.amount_cents).join(', ')} for ${increments.join(', ')} acknowledged increments`);
      expect(rows.map((row) => Number(row.amount_cents))).to.deep.equal(increments);
    } finally {
      await promoted.destroy();
    }
  }

  it('holds writes while the primary is killed and its replica promoted, loses none, and never writes to the old primary again', async () => {
    // An escape hatch an application took before the switch and kept (a module-level `db`).
    const keptHatch = kits[0]!.forShard(SHARD);
    const hatchId = ids.pop()!;
    // And the knex a migration or rebalance step holds for its shard (ShardDatabases.primary()).
    const keptStep = kits[0]!.topology.primary(SHARD);
    const stepId = ids.pop()!;
    const load = traffic(kits, ids, 3, counterUser);
    await pause(1000);
    await primaryServer().kill();
    const killedAt = performance.now();
    await pause(500);
    promotedPair = true;
    await replicaServer().promote();
    const followed = await eventually(() => events.every((seen) => seen.some((event) => event.stage === 'switched')), 10_000);
    const switchedAt = performance.now();
    await pause(1000);
    // The old primary comes back as it was: writable, not a replica of anyone.
    await primaryServer().start();
    const restartedAt = performance.now();
    await pause(1500);
    await load.stop();
    await keptHatch('users').insert({ id: hatchId, name: 'kept hatch', email: 'kept@example.com' });
    await keptStep('users').insert({ id: stepId, name: 'kept step', email: 'step@example.com' });

    const failed = load.writes.filter((write) => write.error);
    const longest = Math.max(...load.writes.map((write) => write.ms));
    await expectCounters(load.increments);
    const heldAcrossKill = load.writes.filter((write) => !write.error && write.startedAt < switchedAt && write.startedAt + write.ms > killedAt);
    console.log(
      `      ${load.writes.length} writes (${load.acknowledged.length} acknowledged, ${failed.length} failed), ${heldAcrossKill.length} held across the switch, longest ${Math.round(longest)} ms; ` +
        `${load.reads} primary reads, ${load.readFailures.length} failed; switch seen ${Math.round(switchedAt - killedAt)} ms after the kill`,
    );
    for (const seen of events) console.log(`      events: ${seen.map((event) => `${event.stage}(${event.cause}${event.heldMs === undefined ? '' : `, ${Math.round(event.heldMs)} ms`})`).join(' ')}`);
    expect(followed, 'both instances follow the promoted replica').to.equal(true);
    expect(failed.map((write) => write.error)).to.deep.equal([]);
    expect(heldAcrossKill.length, 'writes were held across the switch, not only made before and after').to.be.greaterThan(0);
    expect(longest).to.be.lessThan(10_000);
    expect(load.readFailures).to.deep.equal([]);

    const promoted = direct(target.replica);
    const old = direct(target.primary);
    try {
      const onPromoted = await idsOn(promoted, load.acknowledged);
      const lost = load.acknowledged.filter((id) => !onPromoted.has(id));
      expect(lost, 'every acknowledged write is on the new primary').to.deep.equal([]);
      const afterSwitch = load.writes.filter((write) => !write.error && write.id > 0 && write.startedAt > switchedAt).map((write) => write.id);
      expect(afterSwitch.length).to.be.greaterThan(0);
      const onOld = await idsOn(old, afterSwitch);
      console.log(`      ${afterSwitch.length} writes after the switch (${load.writes.filter((write) => write.startedAt > restartedAt).length} after the old primary restarted): ${onOld.size} on the old primary`);
      expect(onOld.size, 'no write after the switch landed on the old primary').to.equal(0);
      for (const [id, what] of [[hatchId, 'escape hatch'], [stepId, "step's knex"]] as const) {
        expect([(await idsOn(promoted, [id])).size, (await idsOn(old, [id])).size], `the kept ${what} wrote to the promoted node, not the fenced one`).to.deep.equal([1, 0]);
      }
    } finally {
      await Promise.all([promoted.destroy(), old.destroy()]);
    }

    const status = await kits[1]!.status();
    const nodes = status.nodes.filter((node) => node.shard === SHARD);
    expect(nodes.map((node) => [node.node, node.role, node.fenced ?? false])).to.deep.equal([
      [`${SHARD}-primary`, 'replica', true],
      [`${SHARD}-replica1`, 'primary', false],
    ]);
    // A kit that starts now reads the recorded switch before its first write: it never writes to the old primary.
    const late = await createShardKit(config);
    try {
      expect(late.topology.shard(SHARD).primary.config.name).to.equal(`${SHARD}-replica1`);
    } finally {
      await late.close();
    }
  });

  it('fails held writes with the old primary\'s error when no candidate is promoted within the hold window', async () => {
    const short = await createShardKit({ ...config, failover: { ...config.failover, holdMs: 1500 } });
    try {
      const id = ids[0]!;
      await primaryServer().kill();
      const started = performance.now();
      const outcome = await short
        .table('users')
        .insert({ id, name: 'x', email: 'x@example.com' })
        .catch((error: unknown) => error);
      const waited = performance.now() - started;
      console.log(`      held ${Math.round(waited)} ms, then ${(outcome as { code?: string }).code}: ${(outcome as Error).message}`);
      // The old primary's own error: refused, its breaker open, or (MariaDB) its pooled connection reset at BEGIN.
      expect(outcome).to.have.property('code').that.is.oneOf(['CONNECTION_FAILED', 'SHARD_UNAVAILABLE', 'QUERY_FAILED']);
      expect(outcome).to.have.property('retryable', true);
      expect(waited).to.be.within(1000, 5000);
    } finally {
      await short.close();
      await primaryServer().start();
    }
  });

  // Not on MariaDB: its planned switch needs an admin user, and read_only does not bind one (docs/failover.md).
  if (target.plannedRefusal) it('switches on `shardkit failover` while two instances write: none fails, both follow, the old primary refuses writes', async () => {
    const load = traffic(kits, ids, 2, counterUser);
    await pause(800);
    promotedPair = true;
    const { stdout } = await run('node', ['bin/shardkit.js', '--config', 'shards.cluster.config.ts#failover', 'failover', SHARD, '--to', `${SHARD}-replica1`, '--json']);
    const report = JSON.parse(stdout) as FailoverEvent;
    const followed = await eventually(() => events.every((seen) => seen.some((event) => event.stage === 'switched')), 10_000);
    await pause(800);
    await load.stop();
    const failed = load.writes.filter((write) => write.error);
    await expectCounters(load.increments);
    console.log(
      `      planned switch held ${Math.round(report.heldMs ?? 0)} ms in the CLI; ${load.writes.length} writes, ${failed.length} failed, longest ${Math.round(Math.max(...load.writes.map((write) => write.ms)))} ms`,
    );
    for (const seen of events) console.log(`      events: ${seen.map((event) => `${event.stage}(${event.cause})`).join(' ')}`);
    expect(report).to.include({ shard: SHARD, stage: 'switched', from: `${SHARD}-primary`, to: `${SHARD}-replica1` });
    expect(followed).to.equal(true);
    expect(failed.map((write) => write.error)).to.deep.equal([]);
    const promoted = direct(target.replica);
    const old = direct(target.primary);
    try {
      const onPromoted = await idsOn(promoted, load.acknowledged);
      expect(load.acknowledged.filter((id) => !onPromoted.has(id))).to.deep.equal([]);
      const refused = await old('users')
        .insert({ id: ids.at(-1), name: 'late', email: 'late@example.com' })
        .catch((error: { code?: string }) => error.code);
      expect(refused, 'the fenced old primary refuses the application\'s writes').to.equal(target.plannedRefusal);
    } finally {
      await Promise.all([promoted.destroy(), old.destroy()]);
    }
  });

  it('refuses a planned switch to a node that is not a candidate, and leaves the primary as it was', async () => {
    const other = kits[0]!.topology.shards.find((candidate) => candidate.name !== SHARD && candidate.replicas.length > 0)!.replicas[0]!.config.name;
    const outcome = await kits[0]!.failover(SHARD, { to: other }).catch((error: unknown) => error);
    expect(outcome).to.have.property('code', 'FAILOVER_FAILED');
    expect((outcome as Error).message).to.contain(`not one of its failover candidates (${SHARD}-replica1)`);
    expect(kits[0]!.topology.shard(SHARD).primary.config.name).to.equal(`${SHARD}-primary`);
    await kits[0]!.table('users').insert({ id: ids[0], name: 'still', email: 's@example.com' });
  });
});

describe('role queries on the mariadb cluster', () => {
  it('says primary for the writable primary and replica for its GTID replica', async () => {
    const kit = await createShardKit(clusterMariadb);
    try {
      const shard = kit.topology.shard('maria-1');
      const signals = shard.primary.dialect.replication!;
      expect(await signals.role(shard.primary.knex)).to.equal('primary');
      expect(await signals.role(shard.replicas[0]!.knex)).to.equal('replica');
    } finally {
      await kit.close();
    }
  });
});

describe('a promoted postgres node is followed only once new sessions take writes', function () {
  this.timeout(30_000);
  let kit: ShardKit;
  const server: Connection = { client: 'pg', port: 54421, database: 'shardkit' };
  const roleDefault = (setting: string) =>
    `set transaction read write; do $$ begin execute format('alter role %I in database %I ${setting}', current_user, current_database()); end $$`;

  before(async () => {
    kit = await createShardKit(clusterPostgres);
  });

  after(async () => {
    await kit?.close();
  });

  // A planned switch fences the old primary with this role default; it replicates to the
  // candidate, which keeps it after pg_promote() until promote() resets it.
  it('says replica for a node out of recovery while its role default is read-only, even asked on a session opened before', async () => {
    const signals = kit.topology.shard('pg-b').primary.dialect.replication!;
    const early = direct(server);
    const admin = direct(server);
    try {
      expect(await signals.role(early)).to.equal('primary');
      await admin.raw(roleDefault('set default_transaction_read_only = on'));
      expect(await signals.role(early), 'its own session is read-write, new ones would not be').to.equal('replica');
      await admin.raw(roleDefault('reset default_transaction_read_only'));
      expect(await signals.role(early)).to.equal('primary');
    } finally {
      await admin.raw(roleDefault('reset default_transaction_read_only')).catch(() => undefined);
      await Promise.all([early.destroy(), admin.destroy()]);
    }
  });

  it('retires the connections a node had before it became the primary: none is handed out again', async () => {
    const node = kit.topology.shard('pg-b').replicas[0]!;
    const backend = async () => Number(rowOf(await node.knex.raw('select pg_backend_pid() as pid'))?.pid);
    const before = new Set<number>();
    for (let query = 0; query < 5; query++) before.add(await backend());
    node.retireConnections();
    const after = new Set<number>();
    for (let query = 0; query < 5; query++) after.add(await backend());
    expect(after.size, 'the pool keeps its new connections').to.be.lessThan(5);
    expect([...after].filter((pid) => before.has(pid))).to.deep.equal([]);
  });
});

describe('write markers: a repeated write learns whether its first attempt committed', function () {
  this.timeout(30_000);
  let kit: ShardKit;

  before(async () => {
    kit = await createShardKit(clusterPostgres);
  });

  after(async () => {
    await kit?.close();
  });

  it('places a new marker, finds a committed one, and waits for one still committing before it answers', async () => {
    const node = kit.topology.shard('pg-a').primary;
    const committed = new WriteMarker();
    await node.knex.transaction(async (trx) => expect(await committed.place(trx, node)).to.equal(true));
    const repeat = await node.knex.transaction();
    expect(await committed.place(repeat, node), 'the first attempt committed').to.equal(false);
    await repeat.rollback().catch(() => undefined);

    const inFlight = new WriteMarker();
    const first = await node.knex.transaction();
    expect(await inFlight.place(first, node)).to.equal(true);
    const second = await node.knex.transaction();
    let answered = false;
    const verdict = inFlight.place(second, node).then((placed) => {
      answered = true;
      return placed;
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(answered, 'no verdict while the first attempt is still open').to.equal(false);
    await first.rollback();
    expect(await verdict, 'the first attempt rolled back: the repeat does the write').to.equal(true);
    await second.rollback();
  });
});
