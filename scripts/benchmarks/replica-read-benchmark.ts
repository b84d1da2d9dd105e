/**
 * Replica reads: point reads routed by shardkit to a replica (lag checked, breaker, in-flight
 * count, planning) against the same reads sent with plain knex straight to the primary and to
 * the replica, interleaved in one run on the local PostgreSQL cluster. Also the lag monitor's
 * cost: replica probes per second per replica at the default interval.
 */
import knexModule from 'knex';
import { renderTable } from '../../lib/cli/render-table.js';
import { createShardKit, SchemaMigrator } from '../../lib/index.js';
import clusterConfig from '../../shards.cluster.config.js';
import type { Benchmark } from '../bench.js';
import { percentile, sampleInterleaved } from './latency.js';
import { withLocalCluster } from '../local-cluster.js';

const ROWS = 2000;
const ROUNDS = 3000;

export const replicaReadBenchmark: Benchmark = {
  name: 'replica-read',
  description: `${ROUNDS} interleaved point reads: shardkit to a replica vs plain knex (local PostgreSQL cluster)`,
  run: () =>
    withLocalCluster(async () => {
      const kit = await createShardKit({ ...clusterConfig, reads: { default: 'replica', maxLagMs: 2000 } });
      try {
        await new SchemaMigrator(kit).latest();
        await kit.allShards('orders').del();
        await kit.allShards('users').del();
        const ids = Array.from({ length: ROWS }, (_, index) => index + 1);
        await kit.table('users').insert(ids.map((id) => ({ id, name: `user ${id}`, email: `u${id}@example.com` })));
        // Plain knex on one shard, and the keys that shard owns, so that every variant reads the same rows.
        const shard = kit.topology.shard(kit.shardNames[0]!);
        const owned = ids.filter((id) => kit.shardFor(id) === shard.name);
        const connect = (connection: unknown) => knexModule.knex({ client: 'pg', connection: connection as never, pool: { min: 1, max: 2 } });
        const shardConfig = clusterConfig.shards.find((candidate) => candidate.name === shard.name)!;
        const plainPrimary = connect(shardConfig.primary.connection);
        const plainReplica = connect(shardConfig.replicas![0]!.connection);
        let servedByReplica = 0;
        kit.on('query', (event) => {
          if (event.role === 'replica') servedByReplica++;
        });
        const id = (round: number) => owned[(round * 7919) % owned.length]!;
        const variants = {
          shardkit: (round: number) => kit.table('users').where('id', id(round)).first(),
          primaryKnex: (round: number) => plainPrimary('users').where('id', id(round)).first(),
          replicaKnex: (round: number) => plainReplica('users').where('id', id(round)).first(),
        };
        await new Promise((resolve) => setTimeout(resolve, 600));
        await sampleInterleaved(variants, 300);
        servedByReplica = 0;
        const probesBefore = kit.lagProbeCount;
        const started = performance.now();
        const samples = await sampleInterleaved(variants, ROUNDS);
        const seconds = (performance.now() - started) / 1000;
        const replicas = kit.topology.shards.reduce((count, candidate) => count + candidate.replicas.length, 0);
        const probesPerSecPerReplica = (kit.lagProbeCount - probesBefore) / seconds / replicas;
        await Promise.all([plainPrimary.destroy(), plainReplica.destroy()]);

        const p50 = (name: keyof typeof variants) => percentile(samples[name]!, 0.5);
        const p99 = (name: keyof typeof variants) => percentile(samples[name]!, 0.99);
        const ratio = (a: number, b: number) => Number((a / b).toFixed(3));
        console.log(
          renderTable(
            ['variant', 'p50 ms', 'p99 ms', 'p50 / plain knex primary'],
            (['shardkit', 'primaryKnex', 'replicaKnex'] as const).map((name) => [
              name === 'shardkit' ? 'shardkit, read: replica' : name === 'primaryKnex' ? 'plain knex, primary' : 'plain knex, replica',
              Number(p50(name).toFixed(3)),
              Number(p99(name).toFixed(3)),
              ratio(p50(name), p50('primaryKnex')),
            ]),
          ),
        );
        console.log(`reads served by a replica: ${servedByReplica} of ${ROUNDS}; lag monitor: ${probesPerSecPerReplica.toFixed(2)} probes/s per replica (interval ${kit.config.lagMonitor.intervalMs} ms)`);
        console.log(
          JSON.stringify({
            bench: 'replica-read',
            p50RatioVsPrimaryKnex: ratio(p50('shardkit'), p50('primaryKnex')),
            p50RatioVsReplicaKnex: ratio(p50('shardkit'), p50('replicaKnex')),
            probesPerSecPerReplica: Number(probesPerSecPerReplica.toFixed(2)),
            servedByReplicaShare: Number((servedByReplica / ROUNDS).toFixed(3)),
          }),
        );
      } finally {
        await kit.close();
      }
    }),
};
