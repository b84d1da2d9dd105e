import type { ShardKit } from '../lib/index.js';

/** Demos and benchmarks start over: roll a migration back to pending, forget it, and empty its target table. */
export async function resetOnlineMigration(kit: ShardKit, name: string): Promise<void> {
  const runner = kit.onlineMigration(name);
  for (let status = await runner.status(); status.phase !== 'pending' && status.phase !== 'cleanup'; status = await runner.status()) {
    await runner.rollback();
  }
  await runner.forget();
  const target = kit.migrationCoordinator.tablesOf(name)!.tableOf('target');
  await Promise.all(kit.shardNames.map((shard) => kit.forShard(shard)(target).truncate()));
}
