import { expect } from 'chai';
import knexFactory from 'knex';
import { keyListOf, MAX_LIST_KEYS } from '../../../lib/knex/key-list.js';

describe('key lists a cached read answers key by key', () => {
  const knex = knexFactory({ client: 'pg' });
  const spellings = ['user_id', 'orders.user_id'];
  const listOf = (builder: ReturnType<typeof knex>) => keyListOf(builder, 'user_id', spellings, 'orders');

  it('splits a select of rows of several keys, with per-row filters, that returns the key', () => {
    for (const builder of [
      knex('orders').whereIn('user_id', [1, 2]),
      knex('orders').whereIn('orders.user_id', [1, 2]).where('status', 'paid').whereNot('amount', 0),
      knex('orders').select('id', 'user_id').whereIn('user_id', [1, 2]),
      knex('orders').select('orders.*').whereIn('user_id', [1, 2]),
    ]) {
      expect(listOf(builder)?.values, builder.toString()).to.deep.equal([1, 2]);
    }
  });

  it('does not split what makes rows depend on each other, or could misplace them', () => {
    const refused = [
      knex('orders').whereIn('user_id', [1]),
      knex('orders').whereIn('user_id', Array.from({ length: MAX_LIST_KEYS + 1 }, (_, index) => index)),
      knex('orders').whereIn('user_id', [1, 2]).orderBy('id'),
      knex('orders').whereIn('user_id', [1, 2]).limit(5),
      knex('orders').whereIn('user_id', [1, 2]).offset(5),
      knex('orders').whereIn('user_id', [1, 2]).orWhere('status', 'paid'),
      knex('orders').whereNotIn('user_id', [1, 2]),
      knex('orders').distinct('status').whereIn('user_id', [1, 2]),
      knex('orders').select('*').distinctOn('status').whereIn('user_id', [1, 2]),
      knex('orders').count('id').whereIn('user_id', [1, 2]),
      knex('orders').select('status').groupBy('status').whereIn('user_id', [1, 2]),
      knex('orders').select('id', 'status').whereIn('user_id', [1, 2]),
      knex('orders').select('*', { user_id: 'parent_id' }).whereIn('user_id', [1, 2]),
      knex('orders').select('*', 'parent_id as user_id').whereIn('user_id', [1, 2]),
      knex('orders').first().whereIn('user_id', [1, 2]),
    ];
    expect(refused.map((builder) => listOf(builder))).to.deep.equal(refused.map(() => undefined));
  });
});
