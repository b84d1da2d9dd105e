import { expect } from 'chai';
import { HashRing } from '../../../lib/hashing/hash-ring.js';
import type { BackfillCheckpoint } from '../../../lib/migrations/online/control-store.js';
import { backfillShard } from '../../../lib/migrations/online/backfill.js';
import { migrationTables } from '../../../lib/migrations/online/migration-tables.js';
import { resolveConfig } from '../../../lib/config/resolve-config.js';
import { usersV2 } from '../../../migrations/online/users-v2.js';
import { RecordingDatabases } from '../../support/recording-databases.js';

// Source rows of shard s1, ids 1..5, served in keyset batches.
const SOURCE = [1, 2, 3, 4, 5].map((id) => ({ id, name: `First${id} Last`, email: `u${id}@x`, created_at: null }));

describe('backfill through a recording seam', () => {
  let databases: RecordingDatabases;
  let ring: HashRing;

  beforeEach(async () => {
    ring = await HashRing.create([{ name: 's1', weight: 1 }, { name: 's2', weight: 1 }]);
    databases = new RecordingDatabases(ring, (statement) => {
      if (statement.shard !== 's1' || !statement.sql.startsWith('select')) return undefined;
      const after = statement.sql.includes('"id" > $1') ? Number(statement.bindings[0]) : 0;
      const limit = Number(statement.bindings.at(-1));
      return SOURCE.filter((row) => row.id > after).slice(0, limit);
    });
  });

  afterEach(async () => {
    await databases.close();
  });

  it('reads keyset batches from the source shard and writes each transformed row to its target owner, insert-if-absent', async () => {
    const config = resolveConfig({
      shards: [
        { name: 's1', primary: { dialect: 'pglite', connection: {} } },
        { name: 's2', primary: { dialect: 'pglite', connection: {} } },
      ],
      tables: { users: { shardKey: 'id' }, users_v2: { shardKey: 'id' } },
    });
    const tables = migrationTables(usersV2, config, { ring }, () => undefined);
    const saved: BackfillCheckpoint[] = [];
    const final = await backfillShard(databases, tables, 's1', { lastKey: null, rows: 0, done: false }, SOURCE.length, {
      save: async (checkpoint) => {
        saved.push(checkpoint);
      },
      throttle: () => undefined,
    }, { batchSize: 2 });

    expect(final).to.deep.equal({ lastKey: [5], rows: 5, done: true });
    expect(saved.map((checkpoint) => checkpoint.rows)).to.deep.equal([2, 4, 5]);
    expect(databases.sqlOn('s1').filter((sql) => sql.startsWith('select'))).to.deep.equal([
      'select * from "users" order by "id" asc limit $1',
      'select * from "users" where (("id" > $1)) order by "id" asc limit $2',
      'select * from "users" where (("id" > $1)) order by "id" asc limit $2',
    ]);
    const writes = databases.statements.filter((statement) => statement.sql.startsWith('INSERT'));
    expect(new Set(writes.map((statement) => statement.sql))).to.deep.equal(
      new Set(['INSERT INTO "users_v2" ("id", "first_name", "last_name", "email", "created_at") SELECT "id", "first_name", "last_name", "email", "created_at" FROM json_populate_recordset(NULL::"users_v2", $1) ON CONFLICT ("id") DO NOTHING']),
    );
    const written = writes.flatMap((statement) => (JSON.parse(String(statement.bindings[0])) as { id: number }[]).map((row) => [statement.shard, row.id]));
    expect(written.sort()).to.deep.equal(SOURCE.map((row) => [ring.shardFor(row.id), row.id]).sort());
  });
});
