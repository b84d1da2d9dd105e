import { expect } from 'chai';
import { writtenTables } from '../../../lib/planner/written-tables.js';

describe('written tables (the escape hatch check)', () => {
  it('names the tables a write changes, in either dialect, and only those', () => {
    expect(writtenTables('postgres', 'update "users" set "name" = $1 where "id" = $2')).to.deep.equal(['users']);
    expect(writtenTables('postgres', 'insert into "orders" ("id") values ($1) returning "id"')).to.deep.equal(['orders']);
    expect(writtenTables('mysql', 'delete from users_v2 where id in (select id from orders)')).to.deep.equal(['users_v2']);
    expect(writtenTables('mysql', 'update `users` set `name` = ? where `id` = ?')).to.deep.equal(['users']);
    expect(writtenTables('postgres', 'truncate users')).to.deep.equal(['users']);
  });

  it('parses nothing that cannot write rows', () => {
    for (const sql of ['select * from users', 'alter table users add column x int', 'begin', 'set search_path to public']) {
      expect(writtenTables('postgres', sql), sql).to.deep.equal([]);
    }
  });

  it('says it cannot tell when a statement may write rows but cannot be read', () => {
    expect(writtenTables('postgres', 'with gone as (delete from users returning *) select * from gone')).to.equal(undefined);
    expect(writtenTables('postgres', 'copy users from stdin')).to.equal(undefined);
  });
});
