import { expect } from 'chai';
import knexModule, { type Knex } from 'knex';
import type { Engine } from '../../../lib/engine/execute-plan.js';
import { executePlan } from '../../../lib/engine/execute-plan.js';
import type { RoutingOptions } from '../../../lib/engine/shard-access.js';
import { QueryCancelledError, QueryFailedError, QueryTimeoutError, ScatterError } from '../../../lib/errors.js';
import { HashRing } from '../../../lib/hashing/hash-ring.js';
import { planQuery, type RoutingRules } from '../../../lib/planner/plan-query.js';
import { RecordingAccess, type ShardScript } from '../../support/recording-access.js';

// Builders from a connection-less knex compile SQL and run nothing.
const db: Knex = knexModule.knex({ client: 'pg' });
const SHARDS = ['s1', 's2', 's3'];
let rules: RoutingRules;

const routing = (): RoutingOptions => ({
  read: { from: 'primary', maxLagMs: 1000, fallback: 'primary', waitMs: 0 },
  priority: 'normal',
  deadline: performance.now() + 5000,
  timeoutMs: 5000,
});

function engineWith(script: (shard: string, sql: string) => ShardScript, maxParameters = 65_535): { engine: Engine; access: RecordingAccess } {
  const access = new RecordingAccess((shard, query) => script(shard, query.toSQL().sql));
  const engine: Engine = { access, columnTypes: { lookup: async () => () => 'bigint', columnNames: async () => [] }, family: 'postgres', maxParameters, bigintsAs: 'string' };
  return { engine, access };
}

async function execute(builder: Knex.QueryBuilder, engine: Engine, options: { signal?: AbortSignal; allShards?: boolean } = {}) {
  const plan = planQuery(builder as never, rules, { allShards: options.allShards ?? false });
  return executePlan(plan, builder as never, engine, routing(), { concurrency: 4, partial: 'fail', ...(options.signal ? { signal: options.signal } : {}) });
}

/** Keys owned by each shard, in order. */
function keysOf(shard: string, count: number): number[] {
  const keys: number[] = [];
  for (let key = 1; keys.length < count; key++) if (rules.ring.ownerOfSlot(rules.ring.slotOf(key)) === shard) keys.push(key);
  return keys;
}

const failure = (shard: string, retryable = false) =>
  new QueryFailedError(`query on shard ${shard} failed: duplicate key`, { shard, node: `${shard}-primary`, retryable, driverCode: '23505' });

describe('executePlan through a recording seam', () => {
  before(async () => {
    rules = {
      family: 'postgres',
      tables: new Map([['users', { shardKey: 'id' }]]),
      globalTables: new Set(),
      globalShard: 's1',
      maxShardRows: 200_000,
      maxJoinRows: 100_000,
      ring: await HashRing.create(SHARDS.map((name) => ({ name, weight: 1 }))),
      keyColumnOf: () => ({ table: 'users', column: 'id', type: 'integer' }),
    };
  });

  it('sends each shard only its own rows, each shard in one transaction', async () => {
    const rows = SHARDS.flatMap((shard) => keysOf(shard, 2)).map((id) => ({ id, name: `u${id}` }));
    const { engine, access } = engineWith(() => ({ result: { rowCount: 2 } }));
    const { result } = await execute(db('users').insert(rows), engine);
    expect(result).to.deep.equal({ rowCount: 6 });
    expect(access.shardsAsked(true).sort()).to.deep.equal(SHARDS);
    for (const call of access.calls) {
      expect(call.sql).to.deep.equal(['insert into "users" ("id", "name") values (?, ?), (?, ?)']);
    }
  });

  it('splits an insert whose rows need more parameters than one statement carries', async () => {
    const rows = keysOf('s2', 7).map((id) => ({ id, name: `u${id}`, email: 'e' }));
    const { engine, access } = engineWith(() => ({ result: { rowCount: 1 } }), 9);
    const { result } = await execute(db('users').insert(rows), engine);
    expect(access.calls).to.have.length(1);
    expect(access.calls[0]!.transaction).to.equal(true);
    // 9 parameters, 3 columns: 3 rows per statement.
    expect(access.calls[0]!.sql.map((sql) => sql.match(/\(\?, \?, \?\)/g)?.length)).to.deep.equal([3, 3, 1]);
    expect(result).to.deep.equal({ rowCount: 3 });
  });

  it('runs a one-shard, one-statement write as a plain statement', async () => {
    const { engine, access } = engineWith(() => ({ result: 1 }));
    const [key] = keysOf('s3', 1);
    expect((await execute(db('users').where('id', key!).update({ name: 'x' }), engine)).result).to.equal(1);
    expect(access.calls.map((call) => [call.shard, call.transaction, call.sql[0]])).to.deep.equal([['s3', false, 'update "users" set "name" = ? where "id" = ?']]);
  });

  it('says which shards committed when some fail, and is not retryable once one committed', async () => {
    const rows = SHARDS.flatMap((shard) => keysOf(shard, 1)).map((id) => ({ id }));
    const { engine } = engineWith((shard) => (shard === 's2' ? { error: failure('s2') } : { result: { rowCount: 1 } }));
    const error = await execute(db('users').insert(rows), engine).catch((caught: unknown) => caught);
    expect(error).to.be.instanceOf(ScatterError);
    const scatter = error as ScatterError;
    expect([...scatter.succeeded].sort()).to.deep.equal(['s1', 's3']);
    expect(scatter.failures.map((entry) => entry.shard)).to.deep.equal(['s2']);
    expect(scatter.unknown).to.deep.equal([]);
    expect(scatter.retryable).to.equal(false);
    expect(scatter.message).to.match(/committed on: s1, s3|committed on: s3, s1/);
  });

  it('reports a COMMIT lost in flight as unknown, never as committed or failed', async () => {
    const rows = SHARDS.flatMap((shard) => keysOf(shard, 1)).map((id) => ({ id }));
    const lost = new QueryTimeoutError('s1', 's1-primary', 'statement', 100);
    const { engine } = engineWith((shard) => (shard === 's1' ? { commitLost: lost } : { result: { rowCount: 1 } }));
    const scatter = (await execute(db('users').insert(rows), engine).catch((caught: unknown) => caught)) as ScatterError;
    expect(scatter.unknown).to.deep.equal(['s1']);
    expect([...scatter.succeeded].sort()).to.deep.equal(['s2', 's3']);
    expect(scatter.message).to.include('outcome unknown on: s1');
  });

  it('is retryable when no shard committed and every failure is', async () => {
    const rows = SHARDS.flatMap((shard) => keysOf(shard, 1)).map((id) => ({ id }));
    const { engine } = engineWith((shard) => ({ error: failure(shard, true) }));
    const scatter = (await execute(db('users').insert(rows), engine).catch((caught: unknown) => caught)) as ScatterError;
    expect(scatter.succeeded).to.deep.equal([]);
    expect(scatter.retryable).to.equal(true);
  });

  it('on abort, lets shards already writing finish and names the ones never started', async () => {
    const rows = SHARDS.flatMap((shard) => keysOf(shard, 1)).map((id) => ({ id }));
    const { engine, access } = engineWith(() => ({ result: { rowCount: 1 }, delayMs: 50 }));
    const controller = new AbortController();
    const plan = planQuery(db('users').insert(rows) as never, rules, { allShards: false });
    const running = executePlan(plan, db('users').insert(rows) as never, engine, routing(), { concurrency: 1, partial: 'fail', signal: controller.signal });
    setTimeout(() => controller.abort(new Error('client went away')), 10);
    const scatter = (await running.catch((caught: unknown) => caught)) as ScatterError;
    expect(scatter).to.be.instanceOf(ScatterError);
    expect(scatter.succeeded).to.have.length(1);
    expect(access.calls).to.have.length(1);
    expect(scatter.failures.map((entry) => entry.error)).to.satisfy((errors: unknown[]) => errors.every((error) => error instanceof QueryCancelledError));
    expect(scatter.failures).to.have.length(2);
  });

  it('cancels a read at once on abort', async () => {
    const { engine } = engineWith(() => ({ result: [], delayMs: 200 }));
    const controller = new AbortController();
    const started = performance.now();
    setTimeout(() => controller.abort(), 10);
    const error = await execute(db('users').select('id'), engine, { signal: controller.signal }).catch((caught: unknown) => caught);
    expect(error).to.be.instanceOf(QueryCancelledError);
    expect(performance.now() - started).to.be.below(150);
  });

  it('rewrites a multi-shard top-N per shard and merges the answers', async () => {
    const answers: Record<string, unknown[]> = { s1: [{ id: 5 }, { id: 1 }], s2: [{ id: 4 }], s3: [{ id: 9 }, { id: 3 }] };
    const { engine, access } = engineWith((shard) => ({ result: answers[shard] }));
    const { result } = await execute(db('users').select('id').orderBy('id', 'desc').limit(3), engine);
    expect(result).to.deep.equal([{ id: 9 }, { id: 5 }, { id: 4 }]);
    for (const call of access.calls) expect(call.sql).to.deep.equal(['select "id" from "users" order by "id" desc limit ?']);
  });
});
