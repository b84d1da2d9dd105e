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

/** Demos and benchmarks start over: an interrupted rebalance is rolled back and its copies removed, a finished one finished. */
export async function settleRebalance(kit: ShardKit): Promise<void> {
  const rebalance = kit.rebalance();
  for (let status = await rebalance.status(); !status.cleaned; status = await rebalance.status()) {
    if (status.phase === 'cleanup') await rebalance.cleanup();
    else if (status.phase === 'pending') await rebalance.abort();
    else await rebalance.phases.rollback();
  }
}
