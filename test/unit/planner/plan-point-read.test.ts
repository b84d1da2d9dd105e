import { expect } from 'chai';
import knexModule, { type Knex } from 'knex';
import { planPointRead } from '../../../lib/planner/plan-point-read.js';
import { ownerOfKey, planByShape, type RoutingRules } from '../../../lib/planner/plan-query.js';
import { plannerRules } from '../../support/planner-rules.js';

// A knex without a connection only builds queries: planning needs no database.
const db: Knex = knexModule.knex({ client: 'pg' });

describe("the point read's shortcut through the planner", () => {
  let rules: RoutingRules;
  const shortcut = (builder: Knex.QueryBuilder) => planPointRead(builder as never, rules, ownerOfKey);
  const full = (builder: Knex.QueryBuilder) => planByShape(builder as never, rules, { allShards: false });
  const KEYS = Array.from({ length: 200 }, (_, index) => index * 7919 + 1);

  before(async () => {
    rules = await plannerRules();
  });

  const taken: [string, (key: number) => Knex.QueryBuilder][] = [
    ["where('id', k)", (key) => db('users').where('id', key)],
    ["where('id', k).first()", (key) => db('users').where('id', key).first()],
    ["where('id', '=', k)", (key) => db('users').where('id', '=', key)],
    ['where({ id: k })', (key) => db('users').where({ id: key })],
    ["where('users.id', k)", (key) => db('users').where('users.id', key)],
    ["select('id', 'name').where('id', k)", (key) => db('users').select('id', 'name').where('id', key)],
    ["first('name').where('id', k)", (key) => db('users').first('name').where('id', key)],
    ["where('id', k).limit(5).offset(1)", (key) => db('users').where('id', key).limit(5).offset(1)],
    ["where('id', 'k') (a string key)", (key) => db('users').where('id', String(key))],
    ["where('id', kn) (a bigint key)", (key) => db('users').where('id', BigInt(key) as never)],
    ["orders where('user_id', k)", (key) => db('orders').where('user_id', key)],
  ];

  for (const [name, build] of taken) {
    it(`plans ${name} as the full planner does, by the shortcut`, () => {
      for (const key of KEYS) {
        const plan = shortcut(build(key));
        expect(plan, 'the shortcut takes it').to.not.equal(undefined);
        expect(plan).to.deep.equal(full(build(key)));
      }
    });
  }

  const declined: [string, () => Knex.QueryBuilder][] = [
    ['a second condition', () => db('users').where('id', 7).where('name', 'x')],
    ['the key twice', () => db('users').where('id', 7).where('id', 8)],
    ['whereIn', () => db('users').whereIn('id', [7, 8])],
    ['a range', () => db('users').where('id', '>', 7)],
    ['orWhere', () => db('users').where('id', 7).orWhere('id', 8)],
    ['whereNot', () => db('users').whereNot('id', 7)],
    ['a NULL key', () => db('users').where('id', null as never)],
    ['a raw key', () => db('users').where('id', db.raw('7'))],
    ['a date key', () => db('users').where('id', new Date(0) as never)],
    ['an alias', () => db('users as u').where('u.id', 7)],
    ['ONLY', () => db('users', { only: true }).where('id', 7)],
    ['a join', () => db('users').join('orders', 'orders.user_id', 'users.id').where('users.id', 7)],
    ['a raw column', () => db('users').select(db.raw('count(*)')).where('id', 7)],
    ['a subquery column', () => db('users').select({ n: db('orders').count('*') }).where('id', 7)],
    ['distinct', () => db('users').distinct('name').where('id', 7)],
    ['an aggregate', () => db('users').count('*').where('id', 7)],
    ['a lock', () => db('users').where('id', 7).forUpdate()],
    ['an order', () => db('users').where('id', 7).orderBy('name')],
    ['an update', () => db('users').where('id', 7).update({ name: 'x' })],
    ['a delete', () => db('users').where('id', 7).del()],
    ['an insert', () => db('users').insert({ id: 7 })],
    ['a global table', () => db('countries').where('id', 7)],
    ['no condition', () => db('users')],
  ];

  for (const [name, build] of declined) {
    it(`leaves ${name} to the full planner`, () => {
      expect(shortcut(build())).to.equal(undefined);
    });
  }

  it('refuses a key its column cannot hold as the full planner does', () => {
    const failure = (plan: () => unknown) => {
      try {
        plan();
      } catch (error) {
        return [(error as Error).constructor.name, (error as Error).message];
      }
      return undefined;
    };
    const refused = failure(() => shortcut(db('users').where('id', 'seven')));
    expect(refused).to.not.equal(undefined);
    expect(refused).to.deep.equal(failure(() => full(db('users').where('id', 'seven'))));
  });
});
