import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import { fingerprintOf } from '../../../lib/knex/builder-fingerprint.js';

/** Builders of every shape a repository layer reads with, many alike but for one detail. */
function builders(knex: Knex): Knex.QueryBuilder[] {
  const day = new Date('2026-01-02T03:04:05.678Z');
  return [
    knex('users').where('id', 5).first(),
    knex('users').where('id', 5).first(),
    knex('users').where('id', 6).first(),
    knex('users').where('id', '5').first(),
    knex('users').where('id', 5n as unknown as number).first(),
    knex('users').where('id', 5).first('name'),
    knex('users').where('id', 5).select('name'),
    knex('users').where('id', 5),
    knex('users').where({ id: 5 }),
    knex('users').where('id', '>', 5),
    knex('users').whereNot('id', 5),
    knex('users').where('id', 5).orWhere('id', 6),
    knex('users').where('id', 5).andWhere('id', 6),
    knex('users').whereIn('id', [1, 2, 3]),
    knex('users').whereIn('id', [1, 2, 3]),
    knex('users').whereIn('id', [1, 2]),
    knex('users').whereIn('id', [12, 3]),
    knex('users').whereIn('id', [1, 23]),
    knex('users').whereNotIn('id', [1, 2, 3]),
    knex('users').where('name', 'a:b').orderBy('id').limit(10),
    knex('users').where('name', 'a').orderBy('id', 'desc').limit(10),
    knex('users').where('name', 'a').orderBy('id').limit(10).offset(10),
    knex('users').where('name', 'a').orderBy('id').limit(11),
    knex('users').where('created_at', day),
    knex('users').where('created_at', new Date(day.getTime() + 1)),
    knex('users').whereNull('email'),
    knex('users').whereNotNull('email'),
    knex('users').count('id as n'),
    knex('users').countDistinct('id as n'),
    knex('users').max('id'),
    knex('users').pluck('name'),
    knex('users').distinct('name'),
    knex('users').where('name', 'like', 'a%'),
    knex('users').where('name', 'ilike', 'a%'),
    knex('users').where('id', 5).where('name', 'x'),
    knex('users').where('name', 'x').where('id', 5),
    knex('users as u').where('u.id', 5),
    knex('users').whereBetween('id', [1, 9]),
    knex('users').where('flag', true),
    knex('users').where('flag', false),
    knex('users').where('flag', null),
    knex('users').where('score', 0),
    knex('users').where('score', -0),
    knex('users').groupBy('name').select('name'),
    // JSON keys may hold the fingerprint's own separators.
    knex('users').whereJsonSupersetOf('doc', { a: 'b', c: 'd' }),
    knex('users').whereJsonSupersetOf('doc', { 'a=s1:b;c': 'd' }),
    knex('users').whereJsonSupersetOf('doc', { '1:a=s1:b;1:c': 'd' }),
  ];
}

describe('builder fingerprints (the read cache key without compiling)', () => {
  for (const client of ['pg', 'mysql2']) {
    it(`two builders share a fingerprint exactly when they compile to the same SQL and bindings (${client})`, () => {
      const all = builders(knexFactory({ client }));
      const fingerprints = all.map((builder) => fingerprintOf(builder));
      const compiled = all.map((builder) => {
        const { sql, bindings } = builder.toSQL();
        return JSON.stringify([sql, bindings.map((value) => (typeof value === 'bigint' ? `${value}n` : value instanceof Date ? value.toISOString() : value))]);
      });
      expect(fingerprints.filter((fingerprint) => fingerprint === undefined)).to.deep.equal([]);
      let pairs = 0;
      for (let a = 0; a < all.length; a++) {
        for (let b = a + 1; b < all.length; b++) {
          // Equal fingerprints must mean equal SQL and bindings; the converse may fail only for
          // values a driver binds alike ('5' and 5), which only costs a second entry.
          if (fingerprints[a] === fingerprints[b]) {
            pairs++;
            expect(compiled[a], `builders ${a} and ${b}`).to.equal(compiled[b]);
          }
        }
      }
      // The list holds three pairs written twice on purpose (and where(id) with where({ id })).
      expect(pairs).to.be.at.least(3);
    });
  }

  it('refuses what it cannot see through: raw SQL, subqueries, callbacks, buffers, options, comments, query context', () => {
    const knex = knexFactory({ client: 'pg' });
    const refused = [
      knex('users').whereRaw('id = ?', [5]),
      knex('users').where('id', knex.raw('5')),
      knex('users').select(knex.raw('count(*)')),
      knex('users').whereIn('id', knex('orders').select('user_id')),
      knex('users').where((inner) => inner.where('id', 5).orWhere('id', 6)),
      knex('users').join('orders', 'orders.user_id', 'users.id'),
      knex('users').where('avatar', Buffer.from('ab')),
      knex('users').where('id', 5).options({ nestTables: true }),
      knex('users').where('id', 5).comment('hint'),
      knex('users').where('id', 5).queryContext({ tenant: 'a' }),
    ];
    expect(refused.map((builder) => fingerprintOf(builder))).to.deep.equal(refused.map(() => undefined));
  });
});
