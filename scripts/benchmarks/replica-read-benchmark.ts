/**
 * Replica reads: point reads routed by shardkit to a replica (lag checked, breaker, in-flight
 * count, planning) against the same reads sent with plain knex straight to the primary and to
 * the replica, interleaved in one run on the local PostgreSQL cluster. Also the lag monitor's
 * cost while only reads run (replica probes, primary position reads, heartbeat writes), and the
 * share of reads an idle, caught-up replica serves at maxLagMs 100 and 50.
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
const SHARE_READS = 400;

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
        let heartbeats = 0;
        for (const { primary } of kit.topology.shards) {
          primary.knex.on('query', (query: { sql: string }) => {
            if (/insert into .shardkit_heartbeat/i.test(query.sql)) heartbeats++;
          });
        }
        const probesBefore = kit.lagProbeCount;
        const primaryReadsBefore = kit.lagPrimaryReadCount;
        const started = performance.now();
        const samples = await sampleInterleaved(variants, ROUNDS);
        const seconds = (performance.now() - started) / 1000;
        const replicas = kit.topology.shards.reduce((count, candidate) => count + candidate.replicas.length, 0);
        const probesPerSecPerReplica = (kit.lagProbeCount - probesBefore) / seconds / replicas;
        const primaryReadsPerSecPerShard = (kit.lagPrimaryReadCount - primaryReadsBefore) / seconds / kit.shardNames.length;
        const heartbeatsDuringSamples = heartbeats;
        await Promise.all([plainPrimary.destroy(), plainReplica.destroy()]);

        const servedDuringSamples = servedByReplica;
        // Tight bounds on an idle, caught-up replica: reads spread over the monitor's cycle.
        const shareAt = async (maxLagMs: number) => {
          const before = servedByReplica;
          for (let round = 0; round < SHARE_READS; round++) {
            await kit.table('users', { read: 'replica', maxLagMs }).where('id', id(round)).first();
            await new Promise((resolve) => setTimeout(resolve, (round * 7) % 23));
          }
          return (servedByReplica - before) / SHARE_READS;
        };
        const shareAt100 = await shareAt(100);
        const shareAt50 = await shareAt(50);

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
        console.log(
          `lag monitor while only reads run: ${probesPerSecPerReplica.toFixed(2)} replica probes/s per replica, ` +
            `${primaryReadsPerSecPerShard.toFixed(1)} position reads/s per primary, ${heartbeatsDuringSamples} heartbeat writes (interval ${kit.config.lagMonitor.intervalMs} ms)`,
        );
        console.log(`idle caught-up replica, ${SHARE_READS} reads each: served by it at maxLagMs 100: ${(shareAt100 * 100).toFixed(1)}%, at 50: ${(shareAt50 * 100).toFixed(1)}%`);
        console.log(
          JSON.stringify({
            bench: 'replica-read',
            p50RatioVsPrimaryKnex: ratio(p50('shardkit'), p50('primaryKnex')),
            p50RatioVsReplicaKnex: ratio(p50('shardkit'), p50('replicaKnex')),
            probesPerSecPerReplica: Number(probesPerSecPerReplica.toFixed(2)),
            primaryReadsPerSecPerShard: Number(primaryReadsPerSecPerShard.toFixed(1)),
            replicaShareAt100ms: Number(shareAt100.toFixed(3)),
            replicaShareAt50ms: Number(shareAt50.toFixed(3)),
            servedByReplicaShare: Number((servedDuringSamples / ROUNDS).toFixed(3)),
          }),
        );
      } finally {
        await kit.close();
      }
    }),
};
