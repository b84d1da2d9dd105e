/**
 * Kits taking part in the example online migration users -> users_v2 on a fresh schema, and the
 * checks of its tests: every row of a table read from every shard directly, and the differences
 * between the target and transform(source).
 */
import { createShardKit, type ShardKit, type ShardKitConfig } from '../../lib/index.js';
import { ACKS_TABLE, MIGRATIONS_TABLE, MISMATCHES_TABLE } from '../../lib/migrations/online/control-store.js';
import { canonical } from '../../lib/migrations/online/row-identity.js';
import { OUTBOX_TABLE } from '../../lib/migrations/online/sync-outbox.js';
import { usersV2 } from '../../migrations/online/users-v2.js';
import { openFreshKit } from './targets.js';

export const user = (id: number) => ({ id, name: `First${id} Last ${id % 7}`, email: `u${id}@example.com` });

/** Fresh schema, no migration state, then `count` kits taking part in users -> users_v2. */
export async function migrationKits(config: ShardKitConfig, count: number, options: { sampleRate?: number } = {}): Promise<ShardKit[]> {
  const base = await openFreshKit({ name: 'base', config });
  const control = base.forShard(base.config.migrations.controlShard);
  for (const table of [MIGRATIONS_TABLE, ACKS_TABLE, MISMATCHES_TABLE]) await control.schema.dropTableIfExists(table);
  for (const shard of base.shardNames) await base.forShard(shard).schema.dropTableIfExists(OUTBOX_TABLE);
  await base.close();
  const migration = { ...usersV2, shadowSampleRate: options.sampleRate ?? 1 };
  return Promise.all(
    Array.from({ length: count }, () =>
      createShardKit({ ...config, onlineMigrations: [migration], migrations: { pollIntervalMs: 100, leaseMs: 3000 } }),
    ),
  );
}

/** Every row of a table, from every shard directly, by id. */
export async function allRows(kit: ShardKit, table: string): Promise<Map<string, Record<string, unknown>>> {
  const rows = (await Promise.all(kit.shardNames.map((shard) => kit.forShard(shard)(table).select()))).flat();
  return new Map(rows.map((row) => [canonical(row.id), row]));
}

/** Differences between the target and transform(source), row by row. */
export async function divergence(kit: ShardKit): Promise<{ checked: number; differences: string[] }> {
  const [source, target] = await Promise.all([allRows(kit, 'users'), allRows(kit, 'users_v2')]);
  const differences: string[] = [];
  for (const [id, row] of source) {
    const expected = usersV2.transform(row);
    const actual = target.get(id);
    if (!actual) differences.push(`${id}: missing from users_v2`);
    else if (Object.keys(expected).some((column) => canonical(expected[column]) !== canonical(actual[column]))) differences.push(`${id}: differs`);
  }
  for (const id of target.keys()) if (!source.has(id)) differences.push(`${id}: only in users_v2`);
  return { checked: source.size, differences };
}
