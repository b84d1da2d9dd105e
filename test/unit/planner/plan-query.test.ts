import { expect } from 'chai';
import knexModule, { type Knex } from 'knex';
import {
  InvalidShardKeyError,
  ShardKeyRequiredError,
  ShardKeyUpdateError,
  UnknownTableError,
  UnsupportedQueryError,
} from '../../../lib/errors.js';
import { planQuery, type RoutingRules } from '../../../lib/planner/plan-query.js';
import type { QueryPlan } from '../../../lib/planner/query-plan.js';
import { shardQuery } from '../../../lib/engine/shard-query.js';
import { PLANNER_SHARDS, plannerRules } from '../../support/planner-rules.js';

// A knex without a connection only builds queries: planning needs no database.
const db: Knex = knexModule.knex({ client: 'pg' });
let rules: RoutingRules;
const SHARDS = PLANNER_SHARDS;

const plan = (builder: Knex.QueryBuilder, allShards = false): QueryPlan => planQuery(builder as never, rules, { allShards });
const owner = (key: unknown) => rules.ring.ownerOfSlot(rules.ring.slotOf(key));
/** A key another shard than `key`'s owns. */
const keyElsewhere = (key: number) => Array.from({ length: 100 }, (_, index) => index + 2).find((candidate) => owner(candidate) !== owner(key))!;

/** The expected grouping, written out independently of the planner's. */
function groupBy<T>(items: T[], ownerOf: (item: T) => string): Record<string, T[]> {
  const groups: Record<string, T[]> = {};
  for (const item of items) {
    const shard = ownerOf(item);
    groups[shard] = [...(groups[shard] ?? []), item];
  }
  return groups;
}

function refusal(build: () => unknown): Error {
  try {
    build();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the query to be refused');
}

describe('planQuery', () => {
  before(async () => {
    rules = await plannerRules();
  });

  describe('routes by the shard key', () => {
    const pinnedToSeven: [string, () => Knex.QueryBuilder][] = [
      ["where('id', 7)", () => db('users').where('id', 7)],
      ["where('id', '=', 7)", () => db('users').where('id', '=', 7)],
      ['where({ id: 7, name })', () => db('users').where({ id: 7, name: 'x' })],
      ["where('users.id', 7)", () => db('users').where('users.id', 7)],
      ["'users as u' where('u.id', 7)", () => db('users as u').where('u.id', 7)],
      ["where('id', '7') (a string key)", () => db('users').where('id', '7')],
      ["where('id', 7n) (a bigint key)", () => db('users').where('id', 7n as never)],
      ['where id and an unrelated OR group', () => db('users').where('id', 7).where((q) => q.where('a', 1).orWhere('b', 2))],
      ['first()', () => db('users').where('id', 7).first()],
      ['update', () => db('users').where('id', 7).update({ name: 'x' })],
      ['delete', () => db('users').where('id', 7).del()],
    ];
    for (const [label, build] of pinnedToSeven) {
      it(`${label} -> the owner of 7 only`, () => {
        expect(plan(build()).route).to.deep.equal({ kind: 'one', shard: owner(7) });
      });
    }

    it('whereIn -> the owners of the keys, each asked for its own keys only', () => {
      const keys = Array.from({ length: 20 }, (_, index) => index + 1);
      const result = plan(db('users').whereIn('id', keys));
      const expected = groupBy(keys, owner);
      expect(result.route).to.deep.equal({ kind: 'some', shards: Object.keys(expected) });
      expect(result.keysByShard).to.deep.equal(expected);
      expect(result.keyColumns).to.include('id');
    });

    it('intersects AND-ed conditions on the key', () => {
      expect(plan(db('users').whereIn('id', [1, 2, 3]).where('id', 2)).route).to.deep.equal({ kind: 'one', shard: owner(2) });
      expect(plan(db('users').where('id', 1).where('id', 2)).route).to.deep.equal({ kind: 'none' });
      expect(plan(db('users').whereIn('id', [])).route).to.deep.equal({ kind: 'none' });
      expect(plan(db('users').whereIn('id', [null, 5])).route).to.deep.equal({ kind: 'one', shard: owner(5) });
    });

    const unpinned: [string, () => Knex.QueryBuilder][] = [
      ['no condition', () => db('users')],
      ['an OR beside the key', () => db('users').where('id', 7).orWhere('name', 'x')],
      ['a negated key condition', () => db('users').whereNot('id', 7)],
      ['a range on the key', () => db('users').where('id', '>', 7)],
      ['a raw value', () => db('users').where('id', db.raw('7'))],
      ['another column', () => db('users').where('name', 'x')],
    ];
    for (const [label, build] of unpinned) {
      it(`${label} -> every shard`, () => {
        expect(plan(build()).route).to.deep.equal({ kind: 'all', shards: SHARDS });
      });
    }

    it('rejects a pinned value that is not a key', () => {
      expect(refusal(() => plan(db('users').where('id', 1.5)))).to.be.instanceOf(InvalidShardKeyError);
    });
  });

  describe('inserts', () => {
    it('splits rows by their own shard key', () => {
      const rows = Array.from({ length: 12 }, (_, index) => ({ id: index * 3 + 1, name: `u${index}` }));
      const result = plan(db('users').insert(rows));
      expect(result.rowsByShard).to.deep.equal(groupBy([...rows.keys()], (index) => owner(rows[index]!.id)));
      expect(result.route.kind).to.equal('some');
    });

    it('routes orders by user_id, next to their user', () => {
      expect(plan(db('orders').insert({ user_id: 42, id: 1 })).route).to.deep.equal({ kind: 'one', shard: owner(42) });
    });

    it("writes each row's slot into a table's slot column, in copies of the caller's rows, hashed as the key column compares", () => {
      const slotted: RoutingRules = { ...rules, tables: new Map([['users', { shardKey: 'id', slotColumn: 'shard_slot' }]]) };
      // '007' on an integer column is the row 7: same slot, same shard.
      const rows = [{ id: 7 }, { id: '007' }, { id: 12_345 }];
      const builder = db('users').insert(rows);
      const result = planQuery(builder as never, slotted, { allShards: false });
      const slots = [7, 7, 12_345].map((key) => rules.ring.slotOf(key));
      expect(result.insertSlots).to.deep.equal({ column: 'shard_slot', slots });
      const written = Object.keys(result.rowsByShard!).flatMap((shard) => shardQuery(builder as never, result, shard).toSQL().bindings);
      for (const slot of slots) expect(written).to.include(slot);
      expect(rows).to.deep.equal([{ id: 7 }, { id: '007' }, { id: 12_345 }]);
      expect(plan(db('users').insert(rows)).insertSlots, 'no slot column, no slots').to.equal(undefined);
    });

    it('refuses a row without its shard key, or with a key that is not one', () => {
      expect(refusal(() => plan(db('users').insert([{ id: 1 }, { name: 'no id' }])))).to.be.instanceOf(ShardKeyRequiredError);
      expect(refusal(() => plan(db('users').insert({ id: null })))).to.be.instanceOf(InvalidShardKeyError);
    });
  });

  describe('writes without the shard key', () => {
    for (const [label, build] of [
      ['update', () => db('users').where('name', 'x').update({ name: 'y' })],
      ['delete', () => db('users').where('name', 'x').del()],
      ['truncate', () => db('users').truncate()],
    ] as [string, () => Knex.QueryBuilder][]) {
      it(`${label} is refused unless the caller opted in`, () => {
        const error = refusal(() => plan(build()));
        expect(error).to.be.instanceOf(ShardKeyRequiredError);
        expect(error.message).to.contain("kit.allShards('users')");
        expect(plan(build(), true).route).to.deep.equal({ kind: 'all', shards: SHARDS });
      });
    }

    it('an update that would move a row to another shard is refused', () => {
      const other = Array.from({ length: 100 }, (_, index) => index + 2).find((key) => owner(key) !== owner(1))!;
      const same = Array.from({ length: 100 }, (_, index) => index + 2).find((key) => owner(key) === owner(1))!;
      expect(refusal(() => plan(db('users').where('id', 1).update({ id: other })))).to.be.instanceOf(ShardKeyUpdateError);
      expect(plan(db('users').where('id', 1).update({ id: same })).route).to.deep.equal({ kind: 'one', shard: owner(1) });
    });

    const keyChanges: [string, () => Knex.QueryBuilder][] = [
      ['increment of the key', () => db('users').where('id', 3).increment('id', 1)],
      ['decrement of the key', () => db('users').where('id', 3).decrement('id', 1)],
      ['increment of the key beside an update', () => db('users').where('id', 3).update({ name: 'x' }).increment('id', 5)],
      ['an SQL expression as the new key', () => db('users').where('id', 3).update({ id: db.raw('id + 1') })],
      ['an update of the key on several shards', () => db('users').whereIn('id', [1, 2, 3, 4, 5, 6]).update({ id: 1 })],
      ['an upsert merging another key', () => db('users').insert({ id: 1, email: 'a' }).onConflict('email').merge({ id: keyElsewhere(1) })],
      ['an upsert merging an SQL key', () => db('users').insert({ id: 1, email: 'a' }).onConflict('email').merge({ id: db.raw('excluded.id + 1') })],
    ];
    for (const [name, builder] of keyChanges) {
      it(`refuses ${name} (SHARD_KEY_UPDATE)`, () => {
        expect(refusal(() => plan(builder())), name).to.be.instanceOf(ShardKeyUpdateError);
      });
    }

    it("allows an upsert whose merge sets the key to the inserted row's own (merge(), merge(['id']))", () => {
      expect(plan(db('users').insert({ id: 1, email: 'a' }).onConflict('email').merge()).route).to.deep.equal({ kind: 'one', shard: owner(1) });
      expect(plan(db('users').insert({ id: 1, email: 'a' }).onConflict('email').merge(['id', 'email'])).route.kind).to.equal('one');
      expect(plan(db('users').insert({ id: 1, email: 'a' }).onConflict('id').merge({ name: 'b' })).route.kind).to.equal('one');
    });
  });

  describe('canonicalises keys by the column type', () => {
    const spellings = ['7', '007', ' 7', '7 ', '+7', 7, 7n];
    for (const spelling of spellings) {
      it(`routes ${JSON.stringify(String(spelling))} (${typeof spelling}) on an integer key like 7`, () => {
        expect(plan(db('users').where('id', spelling as never)).route).to.deep.equal({ kind: 'one', shard: owner(7) });
        expect(plan(db('users').insert({ id: spelling as never, email: 'x' })).route).to.deep.equal({ kind: 'one', shard: owner(7) });
      });
    }

    it('intersects and narrows IN lists by the canonical key', () => {
      expect(plan(db('users').where('id', '01').where('id', 1)).route).to.deep.equal({ kind: 'one', shard: owner(1) });
      const both = plan(db('users').whereIn('id', ['01', '02']));
      const shards = [owner(1), owner(2)];
      expect(both.route.kind).to.equal(shards[0] === shards[1] ? 'one' : 'some');
    });

    for (const bad of ['1.5', '1e3', '0x10', 'abc', '', '1 2', '١']) {
      it(`refuses ${JSON.stringify(bad)} on an integer key with a typed error`, () => {
        expect(refusal(() => plan(db('users').where('id', bad)))).to.be.instanceOf(InvalidShardKeyError);
      });
    }

    it('refuses rows that are not objects, and keys computed in SQL', () => {
      expect(refusal(() => plan(db('users').insert([null as never])))).to.be.instanceOf(ShardKeyRequiredError);
      expect(refusal(() => plan(db('users').insert({ id: db.raw('1'), email: 'x' })))).to.be.instanceOf(ShardKeyRequiredError);
    });
  });

  describe('multi-shard selects', () => {
    it('plans a merge sort when the query orders rows, asking each shard for offset + limit', () => {
      const merge = plan(db('users').select('id', 'name').orderBy('name', 'desc').orderBy('id').limit(10).offset(5)).merge!;
      expect(merge.kind).to.equal('sort');
      expect(merge.orderBy).to.deep.equal([
        { column: 'name', direction: 'desc', nulls: 'first', expression: { kind: 'column', table: undefined, name: 'name' } },
        { column: 'id', direction: 'asc', nulls: 'last', expression: { kind: 'column', table: undefined, name: 'id' } },
      ]);
      expect(merge.shard.limit).to.equal(15);
      expect([merge.offset, merge.limit]).to.deep.equal([5, 10]);
    });

    it('adds a hidden column for an ORDER BY column the query does not select', () => {
      const merge = plan(db('users').select('id').orderBy('created_at')).merge!;
      expect(merge.shard.addColumns).to.deep.equal([{ sql: { sql: '??', bindings: ['created_at'] }, alias: '__sk_o0' }]);
      expect(merge.hidden).to.deep.equal(['__sk_o0']);
    });

    it('fetches a joined table\'s sort column as a hidden column: orders.* does not carry users.created_at', () => {
      const merge = plan(db('orders').join('users', 'users.id', 'orders.user_id').select('orders.*').orderBy('users.created_at')).merge!;
      expect(merge.shard.addColumns).to.deep.equal([{ sql: { sql: '??', bindings: ['users.created_at'] }, alias: '__sk_o0' }]);
    });

    it('reads the alias of a raw select expression, so ORDER BY the alias sorts by it', () => {
      const merge = plan(db('orders').select('id', db.raw('coalesce(amount_cents, 0) * 2 as line_total')).orderBy('line_total', 'desc')).merge!;
      expect(merge.shard.addColumns).to.deep.equal([]);
      expect(merge.orderBy[0]).to.include({ column: 'line_total', direction: 'desc' });
    });

    it('merges a raw aggregate without GROUP BY into one row', () => {
      const merge = plan(db('orders').select(db.raw('count(distinct user_id) as buyers'))).merge!;
      expect(merge.kind).to.equal('aggregate');
    });

    it('answers an aggregate whose shard-key condition admits no key from one shard (one row, as a database does)', () => {
      expect(plan(db('orders').whereIn('user_id', []).count('* as n').first()).route.kind).to.equal('one');
      expect(plan(db('orders').where('user_id', 1).where('user_id', 2).sum('amount_cents as s')).route.kind).to.equal('one');
      expect(plan(db('orders').whereIn('user_id', []).select('id')).route.kind).to.equal('none');
      expect(plan(db('orders').whereIn('user_id', []).select('status').count('* as n').groupBy('status')).route.kind).to.equal('none');
    });

    it('concatenates unordered rows and cuts LIMIT/OFFSET afterwards', () => {
      const merge = plan(db('users').select('id').limit(10).offset(5)).merge!;
      expect([merge.kind, merge.shard.limit, merge.offset, merge.limit]).to.deep.equal(['concat', 15, 5, 10]);
    });

    it('rewrites AVG as SUM and COUNT per shard and keeps GROUP BY keys', () => {
      const merge = plan(db('orders').select('status').count('* as n').avg('amount_cents as mean').groupBy('status').orderBy('n', 'desc')).merge!;
      expect(merge.kind).to.equal('aggregate');
      expect(merge.shard.replaceColumns).to.deep.equal([
        { sql: { sql: '??', bindings: ['status'] }, alias: '__sk_g0' },
        { sql: { sql: 'count(*)', bindings: [] }, alias: '__sk_p0' },
        { sql: { sql: 'sum(??)', bindings: ['amount_cents'] }, alias: '__sk_p1_sum' },
        { sql: { sql: 'count(??)', bindings: ['amount_cents'] }, alias: '__sk_p1_count' },
      ]);
      expect(merge.shard.dropOrder).to.equal(true);
      if (merge.kind !== 'aggregate') throw new Error('expected an aggregate merge');
      expect(merge.outputs.map((output) => [output.name, output.expr.kind === 'ref' ? output.expr.key : output.expr.kind])).to.deep.equal([
        ['status', '__sk_g0'],
        ['n', '__sk_a0'],
        ['mean', '__sk_a1'],
      ]);
      expect(merge.orderBy.map((key) => [key.column, key.direction])).to.deep.equal([['__sk_a0', 'desc']]);
    });

    it('evaluates HAVING written with havingRaw over any aggregate expression after the merge', () => {
      const merge = plan(db('orders').select('status').sum('amount_cents as total').groupBy('status').havingRaw('count(*) > ? and sum(amount_cents) / count(*) >= ?', [2, 10])).merge!;
      if (merge.kind !== 'aggregate') throw new Error('expected an aggregate merge');
      expect(merge.aggregates.map((aggregate) => [aggregate.fn, aggregate.key])).to.deep.equal([
        ['sum', '__sk_a0'],
        ['count', '__sk_a1'],
      ]);
      expect(merge.having?.kind).to.equal('logic');
      expect(merge.shard.dropHaving).to.equal(true);
    });

    it('counts DISTINCT values by grouping each shard by the argument too', () => {
      const merge = plan(db('orders').select('status').countDistinct('amount_cents as amounts').groupBy('status')).merge!;
      if (merge.kind !== 'aggregate') throw new Error('expected an aggregate merge');
      expect(merge.shard.addGroupBy).to.deep.equal([{ sql: '??', bindings: ['amount_cents'] }]);
      expect(merge.aggregates[0]).to.include({ fn: 'count', distinct: true, values: '__sk_d0' });
      expect(merge.shard.limit, 'a shard returns at most the bound and one row more').to.equal(200_001);
    });

    it('adds up per-shard DISTINCT counts of the shard key, whose values never repeat across shards', () => {
      const merge = plan(db('orders').select('status').countDistinct('user_id as buyers').groupBy('status')).merge!;
      if (merge.kind !== 'aggregate') throw new Error('expected an aggregate merge');
      expect(merge.shard.addGroupBy).to.deep.equal([]);
      expect(merge.shard.replaceColumns?.[1]).to.deep.equal({ sql: { sql: 'count(distinct ??)', bindings: ['user_id'] }, alias: '__sk_p0' });
    });

    it('fetches a raw ORDER BY expression as a hidden column', () => {
      const merge = plan(db('users').select('id', 'name').orderByRaw('lower(name) desc, id')).merge!;
      expect(merge.shard.addColumns).to.deep.equal([{ sql: { sql: 'lower(??)', bindings: ['name'] }, alias: '__sk_o0' }]);
      expect(merge.orderBy.map((key) => [key.column, key.direction])).to.deep.equal([
        ['__sk_o0', 'desc'],
        ['id', 'asc'],
      ]);
      expect(merge.hidden).to.deep.equal(['__sk_o0']);
    });

    it('runs a query grouped by the shard key whole on every shard (each group lives on one)', () => {
      const merge = plan(db('orders').select('user_id').count('* as n').groupBy('user_id').orderBy('n', 'desc').limit(5)).merge!;
      expect([merge.kind, merge.shard.limit, merge.shard.dropOrder, merge.shard.replaceColumns]).to.deep.equal(['sort', 5, false, undefined]);
    });

    it('refuses a deep OFFSET beyond the bound and points to keyset pagination', () => {
      const error = refusal(() => plan(db('users').orderBy('id').limit(10).offset(300_000)));
      expect(error).to.have.property('construct', 'offset');
      expect((error as Error).message).to.match(/paginate/);
    });

    it('refuses a select alias in HAVING on PostgreSQL, which one database refuses too', () => {
      const error = refusal(() => plan(db('orders').select('status').count('* as n').groupBy('status').having('n', '>', 1)));
      expect(error).to.have.property('construct', 'having');
    });

    const refused: [string, () => Knex.QueryBuilder][] = [
      ['window function', () => db('users').select(db.raw('row_number() over () as r'))],
      ['groupBy', () => db('orders').select('status', 'amount_cents').count('* as n').groupBy('status')],
      ['union', () => db('users').select('id').union(db('users').select('id'))],
      ['md5', () => db('users').orderByRaw('md5(name)')],
    ];
    for (const [construct, build] of refused) {
      it(`refuses ${construct} across shards, naming it`, () => {
        const error = refusal(() => plan(build()));
        expect(error).to.be.instanceOf(UnsupportedQueryError);
        expect(error).to.have.property('construct', construct);
      });
    }

    it('pinned to one shard, any query runs as written', () => {
      const result = plan(db('orders').where('user_id', 9).countDistinct('status as n').orderByRaw('n desc'));
      expect(result.route.kind).to.equal('one');
      expect(result.merge).to.equal(undefined);
    });
  });

  describe('tables and joins', () => {
    it('refuses a table the config does not know', () => {
      expect(refusal(() => plan(db('nope')))).to.be.instanceOf(UnknownTableError);
      expect(refusal(() => plan(db('users').join('nope', 'nope.id', 'users.id')))).to.be.instanceOf(UnknownTableError);
    });

    it('sends every query on a global table to the global shard', () => {
      expect(plan(db('countries').update({ name: 'x' })).route).to.deep.equal({ kind: 'one', shard: 's1' });
    });

    it('allows joins of co-located tables on their shard keys, even across shards', () => {
      const join = () => db('orders').join('users', 'users.id', 'orders.user_id');
      expect(plan(join()).route.kind).to.equal('all');
      expect(plan(join().where('orders.user_id', 3)).route).to.deep.equal({ kind: 'one', shard: owner(3) });
    });

    it('plans joins that are not on both shard keys, and joins with a global table, as lookup joins', () => {
      const lookup = plan(db('orders').join('users', 'users.email', 'orders.status').select('orders.id', 'users.name')).lookupJoin!;
      expect(lookup).to.deep.include({ strategy: 'lookup', type: 'inner', innerWhere: [] });
      expect([lookup.outer.column, lookup.inner.column]).to.deep.equal(['status', 'email']);
      expect(plan(db('users').leftJoin('countries', 'countries.code', 'users.name').select('users.*')).lookupJoin?.type).to.equal('left');
      expect(plan(db('countries').join('users', 'users.name', 'countries.name').where('users.id', '>', 3)).lookupJoin?.innerWhere).to.deep.equal([1]);
    });

    it('refuses lookup joins it cannot merge, naming the join', () => {
      const cases = [
        db('orders').join('users', 'users.email', 'orders.status').count('* as n'),
        db('orders').join('users', 'users.email', 'orders.status').where('status', 'x'),
        db('orders').leftJoin('users', 'users.email', 'orders.status').where('users.name', 'x'),
        db('orders').rightJoin('users', 'users.email', 'orders.status'),
        db('orders').join('users', (on) => on.on('users.email', 'orders.status').orOn('users.name', 'orders.status')),
      ];
      for (const query of cases) expect(refusal(() => plan(query))).to.have.property('construct', 'join');
    });

    it('runs co-located subqueries inside each shard, inlines independent ones, refuses the rest', () => {
      const keys = () => db('orders').select('user_id').where('status', 'paid');
      expect(plan(db('users').whereIn('id', keys())).route.kind, 'IN on both shard keys').to.equal('all');
      expect(plan(db('users').where('id', 1).where((q) => q.whereIn('id', keys()))).route.kind).to.equal('one');
      expect(plan(db('users as u').whereExists(db('orders as o').select(1).whereRaw('o.user_id = u.id'))).route.kind).to.equal('all');
      expect(plan(db('users').whereIn('name', db('countries').select('name'))).inline).to.deep.equal([{ statement: 0, kind: 'in' }]);
      expect(plan(db('users').whereIn('email', keys())).inline, 'not on the shard key: evaluated first').to.deep.equal([{ statement: 0, kind: 'in' }]);
      expect(refusal(() => plan(db('users as u').whereExists(db('orders as o').select(1).whereRaw('o.status = u.name'))))).to.have.property('construct', 'exists subquery');
      expect(refusal(() => plan(db('users').where((q) => q.whereIn('email', keys()))))).to.have.property('construct', 'in subquery');
      expect(plan(db('users').whereIn('id', keys().limit(3))).inline, 'a LIMIT spans shards: evaluated first').to.deep.equal([{ statement: 0, kind: 'in' }]);
      expect(refusal(() => plan(db('users').whereRaw('id in (select user_id from orders)')))).to.have.property('construct', 'subquery in raw SQL');
    });

    it('never reads whereColumn as a shard-key value', () => {
      expect(plan((db('users') as unknown as { whereColumn(a: string, op: string, b: string): Knex.QueryBuilder }).whereColumn('id', '=', 'id')).route.kind).to.equal('all');
    });
  });

  it('plans are plain data that survive JSON', () => {
    const result = plan(db('users').whereIn('id', [1, 2, 3, 4, 5, 6]));
    expect(JSON.parse(JSON.stringify(result))).to.deep.equal(result);
  });
});
