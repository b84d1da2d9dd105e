import { expect } from 'chai';
import knexModule, { type Knex } from 'knex';
import type { SqlFamily } from '../../../lib/config/config-types.js';
import { applyKeyset, type KeysetKey, nullsLast, toPage, whereAfter } from '../../../lib/engine/keyset-pagination.js';
import { InvalidCursorError, UnsupportedQueryError } from '../../../lib/errors.js';

// Knex instances without a connection only build SQL.
const builders: Record<SqlFamily, Knex> = {
  postgres: knexModule.knex({ client: 'pg' }),
  mysql: knexModule.knex({ client: 'mysql2' }),
};

/** The WHERE clause `whereAfter` adds, with identifiers unquoted, and its bindings. */
function where(family: SqlFamily, keys: readonly KeysetKey[], values: readonly unknown[] | null): { sql: string; bindings: readonly unknown[] } {
  const { sql, bindings } = whereAfter(builders[family]('t').select('*'), keys, values, family).toSQL();
  return { sql: sql.replace(/^select \* from ["`]t["`]\s*/, '').replace(/["`]/g, ''), bindings };
}

const score = (direction: 'asc' | 'desc'): KeysetKey[] => [{ column: 'score', direction }, { column: 'id' }];

describe('keyset pagination', () => {
  it('puts NULLs where each dialect orders them by default', () => {
    expect(nullsLast('postgres', 'asc')).to.equal(true);
    expect(nullsLast('postgres', 'desc')).to.equal(false);
    expect(nullsLast('mysql', 'asc')).to.equal(false);
    expect(nullsLast('mysql', 'desc')).to.equal(true);
  });

  describe('on PostgreSQL (NULL above every value)', () => {
    it('admits the NULLs after a value when they sort last (ASC)', () => {
      expect(where('postgres', score('asc'), [7, 42])).to.deep.equal({
        sql: 'where (((score > ? or score is null)) or (score = ? and id > ?))',
        bindings: [7, 7, 42],
      });
    });

    it('admits no NULL after a value when they sort first (DESC)', () => {
      expect(where('postgres', score('desc'), [7, 42])).to.deep.equal({ sql: 'where ((score < ?) or (score = ? and id > ?))', bindings: [7, 7, 42] });
    });

    it('has nothing after NULL when NULLs sort last, every value after it when they sort first', () => {
      expect(where('postgres', score('asc'), [null, 42])).to.deep.equal({ sql: 'where ((score is null and id > ?))', bindings: [42] });
      expect(where('postgres', score('desc'), [null, 42])).to.deep.equal({
        sql: 'where ((score is not null) or (score is null and id > ?))',
        bindings: [42],
      });
    });

    it('compares NULLs of earlier keys with IS NULL, over mixed directions', () => {
      const keys: KeysetKey[] = [{ column: 'a' }, { column: 'b', direction: 'desc' }, { column: 'id' }];
      expect(where('postgres', keys, [null, 3, 9])).to.deep.equal({
        sql: 'where ((a is null and b < ?) or (a is null and b = ? and id > ?))',
        bindings: [3, 3, 9],
      });
      expect(where('postgres', keys, [1, null, 9])).to.deep.equal({
        sql: 'where (((a > ? or a is null)) or (a = ? and b is not null) or (a = ? and b is null and id > ?))',
        bindings: [1, 1, 1, 9],
      });
    });
  });

  describe('on MySQL and MariaDB (NULL below every value)', () => {
    it('admits no NULL after a value when they sort first (ASC)', () => {
      expect(where('mysql', score('asc'), [7, 42])).to.deep.equal({ sql: 'where ((score > ?) or (score = ? and id > ?))', bindings: [7, 7, 42] });
    });

    it('admits the NULLs after a value when they sort last (DESC)', () => {
      expect(where('mysql', score('desc'), [7, 42])).to.deep.equal({
        sql: 'where (((score < ? or score is null)) or (score = ? and id > ?))',
        bindings: [7, 7, 42],
      });
    });

    it('has every value after NULL when NULLs sort first, nothing when they sort last', () => {
      expect(where('mysql', score('asc'), [null, 42])).to.deep.equal({
        sql: 'where ((score is not null) or (score is null and id > ?))',
        bindings: [42],
      });
      expect(where('mysql', score('desc'), [null, 42])).to.deep.equal({ sql: 'where ((score is null and id > ?))', bindings: [42] });
    });

    it('compares NULLs of earlier keys with IS NULL, over mixed directions', () => {
      const keys: KeysetKey[] = [{ column: 'a', direction: 'desc' }, { column: 'b' }, { column: 'id', direction: 'desc' }];
      expect(where('mysql', keys, [null, null, 9])).to.deep.equal({ sql: 'where ((a is null and b is not null) or (a is null and b is null and id < ?))', bindings: [9] });
    });
  });

  it('keeps the last key an index range: it is unique and non-null, so none of its NULLs are admitted', () => {
    expect(where('postgres', [{ column: 'id' }], [5])).to.deep.equal({ sql: 'where ((id > ?))', bindings: [5] });
    expect(where('mysql', [{ column: 'id', direction: 'desc' }], [5])).to.deep.equal({ sql: 'where ((id < ?))', bindings: [5] });
  });

  it('matches no row after a cursor whose keys are all NULL and sort last', () => {
    expect(where('postgres', [{ column: 'a' }], [null]).sql).to.equal('where 1 = 0');
    expect(where('mysql', [{ column: 'a', direction: 'desc' }], [null]).sql).to.equal('where 1 = 0');
  });

  it('leaves the query alone without values, and refuses a NULL when no family says where NULLs go', () => {
    expect(where('postgres', score('asc'), null).sql).to.equal('');
    expect(() => whereAfter(builders.postgres('t'), score('asc'), [null, 1])).to.throw(UnsupportedQueryError);
    expect(whereAfter(builders.postgres('t'), score('asc'), [7, 1]).toSQL().sql).to.equal('select * from "t" where (("score" > ?) or ("score" = ? and "id" > ?))');
  });

  it('carries NULL values in the cursor, and a cursor of NULLs leads to the rows after them', () => {
    // PostgreSQL, DESC: the NULLs come first.
    const keys = score('desc');
    const page = toPage(keys, [{ score: null, id: 2 }, { score: null, id: 3 }, { score: 3, id: 1 }], 2);
    expect(page.rows).to.have.length(2);
    expect(page.nextCursor).to.match(/^kc2\./);
    const next = applyKeyset(builders.postgres('t').select('*'), { orderBy: keys, pageSize: 2, cursor: page.nextCursor }, 'postgres').toSQL();
    expect(next.sql).to.equal('select * from "t" where (("score" is not null) or ("score" is null and "id" > ?)) order by "score" desc, "id" asc limit ?');
    expect(next.bindings).to.deep.equal([3, 3]);
  });

  it('builds the next page from a NULL in the last row', () => {
    const keys = score('asc');
    const page = toPage(keys, [{ score: 3, id: 1 }, { score: null, id: 7 }, { score: null, id: 9 }], 2);
    for (const family of ['postgres', 'mysql'] as const) {
      const next = applyKeyset(builders[family]('t').select('*'), { orderBy: keys, pageSize: 2, cursor: page.nextCursor }, family).toSQL();
      const expected = family === 'postgres' ? /where \(\("score" is null and "id" > \?\)\) order by/ : /where \(\(`score` is not null\) or \(`score` is null and `id` > \?\)\) order by/;
      expect(next.sql).to.match(expected);
      expect(next.bindings).to.deep.equal([7, 3]);
    }
  });

  it('round-trips dates, big integers and buffers through the cursor', () => {
    const keys: KeysetKey[] = [{ column: 'at' }, { column: 'n' }, { column: 'b' }, { column: 'id' }];
    const row = { at: new Date('2026-01-02T03:04:05.678Z'), n: 12345678901234567890n, b: Buffer.from('ab01', 'hex'), id: 'x' };
    const page = toPage(keys, [row, { ...row, id: 'y' }], 1);
    const { bindings } = applyKeyset(builders.postgres('t'), { orderBy: keys, pageSize: 1, cursor: page.nextCursor }, 'postgres').toSQL();
    expect(bindings[0]).to.be.instanceOf(Date);
    expect((bindings[0] as Date).toISOString()).to.equal(row.at.toISOString());
    expect(bindings).to.deep.include(12345678901234567890n);
    expect(bindings.some((value) => Buffer.isBuffer(value) && value.equals(row.b))).to.equal(true);
  });

  it('refuses a cursor from another sort order, or that is not a cursor', () => {
    const page = toPage(score('asc'), [{ score: null, id: 1 }, { score: null, id: 2 }], 1);
    const other = { orderBy: score('desc'), pageSize: 1, cursor: page.nextCursor };
    expect(() => applyKeyset(builders.mysql('t'), other, 'mysql')).to.throw(InvalidCursorError);
    expect(() => applyKeyset(builders.mysql('t'), { orderBy: score('asc'), pageSize: 1, cursor: 'kc2.!!' }, 'mysql')).to.throw(InvalidCursorError);
    expect(() => applyKeyset(builders.mysql('t'), { orderBy: score('asc'), pageSize: 1, cursor: 'offset=10' }, 'mysql')).to.throw(InvalidCursorError);
    const unknown = `kc2.${Buffer.from(JSON.stringify({ k: 'score asc,id asc', v: [{ t: '?' }, { t: 'j', v: 1 }] })).toString('base64url')}`;
    expect(() => applyKeyset(builders.mysql('t'), { orderBy: score('asc'), pageSize: 1, cursor: unknown }, 'mysql')).to.throw(InvalidCursorError);
  });

  it('still reads a cursor of the previous format (kc1), which never held a NULL', () => {
    const legacy = `kc1.${Buffer.from(JSON.stringify({ k: 'id asc', v: [{ t: 'j', v: 41 }] })).toString('base64url')}`;
    const { sql, bindings } = applyKeyset(builders.postgres('t'), { orderBy: [{ column: 'id' }], pageSize: 5, cursor: legacy }, 'postgres').toSQL();
    expect(sql).to.equal('select * from "t" where (("id" > ?)) order by "id" asc limit ?');
    expect(bindings).to.deep.equal([41, 6]);
  });

  it('still needs the sort columns selected', () => {
    expect(() => toPage(score('asc'), [{ id: 1 }, { id: 2 }], 1)).to.throw(UnsupportedQueryError, /select the sort column "score"/);
  });
});
