/**
 * npm run demo:cluster: replica reads on the local PostgreSQL cluster (started if it is not
 * running, and stopped again afterwards). Shows a replica read, a replica whose replay is
 * paused, the fallback to the primary, and read-your-writes, with the node serving each read.
 */
import { renderTable } from '../lib/cli/render-table.js';
import { createShardKit, type QueryEvent, SchemaMigrator, type ShardKit, type TableOptions } from '../lib/index.js';
import clusterConfig from '../shards.cluster.config.js';
import { ServerControl, withLocalCluster } from './local-cluster.js';

const MAX_LAG_MS = 500;
const section = (title: string) => console.log(`\n== ${title}`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function printStatus(kit: ShardKit): Promise<void> {
  const { nodes } = await kit.status();
  console.log(
    renderTable(
      ['shard', 'node', 'role', 'breaker', 'lag ms', 'reading age ms', 'note'],
      nodes.map((node) => [node.shard, node.node, node.role, node.breaker, node.lagMs, node.readingAgeMs, node.problem]),
    ),
  );
}

await withLocalCluster(async () => {
  const kit = await createShardKit({ ...clusterConfig, lagMonitor: { intervalMs: 100 } });
  let last: QueryEvent | undefined;
  kit.on('query', (event) => {
    last = event;
  });
  const read = async (label: string, id: number, options: TableOptions) => {
    const row = (await kit.table('users', options).where('id', id).first()) as { name?: string } | undefined;
    const served = last!;
    const how = served.role === 'replica' ? `replica ${served.node} (lag ${served.lagMs} ms)` : `primary ${served.node}`;
    console.log(`${label.padEnd(44)} -> ${row ? `found "${row.name}"` : 'not found'}, served by ${how}`);
    if (served.fallback) console.log(`${''.padEnd(47)}fallback: ${served.fallback}`);
  };
  const shard = kit.topology.shard(kit.shardNames[0]!);
  const replica = new ServerControl(shard.replicas[0]!);
  const idOn = (from: number) => {
    let id = from;
    while (kit.shardFor(id) !== shard.name) id++;
    return id;
  };
  try {
    await new SchemaMigrator(kit).latest();
    await kit.allShards('orders').del();
    await kit.allShards('users').del();
    const first = idOn(1);
    await kit.table('users').insert({ id: first, name: 'Ada', email: 'ada@example.com' });
    await sleep(400);

    section(`nodes (lag measured by heartbeat and WAL position every ${kit.config.lagMonitor.intervalMs} ms)`);
    await printStatus(kit);

    section(`replica reads with maxLagMs ${MAX_LAG_MS}`);
    const replicaRead = { read: 'replica', maxLagMs: MAX_LAG_MS } as const;
    await read(`user ${first}`, first, replicaRead);

    section(`replay paused on ${replica.server}: the replica falls behind`);
    await replica.pauseReplay();
    const marker = idOn(first + 1);
    await kit.table('users').insert({ id: marker, name: 'Grace', email: 'grace@example.com' });
    await read(`user ${marker}, just written`, marker, replicaRead);
    await sleep(MAX_LAG_MS + 200);
    await read(`user ${marker}, ${MAX_LAG_MS + 200} ms later`, marker, replicaRead);
    await printStatus(kit);

    section("read-your-writes: a session's reads carry its writes' positions");
    const session = kit.session();
    const mine = idOn(marker + 1);
    await session.run(() => kit.table('users').insert({ id: mine, name: 'Barbara', email: 'barbara@example.com' }));
    const lenient = { read: 'replica', maxLagMs: 60_000 } as const;
    await read(`user ${mine}, no token, maxLagMs 60000`, mine, lenient);
    await session.run(() => read(`user ${mine}, in the session`, mine, lenient));
    console.log(`token for another service: ${session.token().toString()}`);

    section('replay resumed: the replica catches up and serves again');
    await replica.resumeReplay();
    await sleep(400);
    await session.run(() => read(`user ${mine}, in the session`, mine, lenient));
    await read(`user ${marker}`, marker, replicaRead);
  } finally {
    await replica.resumeReplay().catch(() => undefined);
    await kit.close();
  }
});
