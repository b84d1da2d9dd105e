import { execFile } from 'node:child_process';
import { inspect } from 'node:util';
import { expect } from 'chai';
import { Registry } from 'prom-client';
import { createShardKit, instrumentKit, logStateChanges, type ShardKit, type ShardKitConfig } from '../../lib/index.js';
import { ServerControl } from '../../scripts/local-cluster.js';
import clusterConfig from '../../shards.cluster.config.js';
import { openFreshKit, TARGETS } from '../support/targets.js';

interface LogLine {
  level: 'info' | 'warn';
  fields: Record<string, unknown>;
  message: string;
}

function collectingLogger(lines: LogLine[]) {
  return {
    info: (fields: object, message: string) => lines.push({ level: 'info', fields: fields as Record<string, unknown>, message }),
    warn: (fields: object, message: string) => lines.push({ level: 'warn', fields: fields as Record<string, unknown>, message }),
  };
}

async function metricValues(registry: Registry, name: string) {
  const metric = registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  return (await metric.get()).values;
}

const sumWhere = (values: { value: number; labels: Record<string, unknown>; metricName?: string }[], labels: Record<string, unknown>, metricName?: string) =>
  values
    .filter((entry) => (metricName === undefined || entry.metricName === metricName) && Object.entries(labels).every(([label, value]) => entry.labels[label] === value))
    .reduce((sum, entry) => sum + entry.value, 0);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('observability', function () {
  this.timeout(60_000);

  it('metrics follow a small workload: queries by node and outcome, latency, fan-out, errors, gauges', async () => {
    const kit = await openFreshKit(TARGETS[0]!);
    const { registry, detach } = instrumentKit(kit, { registry: new Registry() });
    try {
      for (let id = 1; id <= 10; id++) await kit.table('users').insert({ id, name: `U${id}`, email: `u${id}@example.com` });
      for (let id = 1; id <= 5; id++) await kit.table('users').where('id', id).first();
      await kit.table('users').select('id').orderBy('id');
      const duplicate = await kit
        .table('users')
        .insert({ id: 1, name: 'again', email: 'x' })
        .catch((error: unknown) => error);
      expect(duplicate).to.have.property('code', 'QUERY_FAILED');

      const shards = kit.topology.ring.shardNames.length;
      const queries = await metricValues(registry, 'shardkit_queries_total');
      expect(sumWhere(queries, { intent: 'write', outcome: 'ok' })).to.equal(10);
      expect(sumWhere(queries, { intent: 'read', outcome: 'ok' })).to.equal(5 + shards);
      expect(sumWhere(queries, { intent: 'write', outcome: 'error' })).to.equal(1);
      expect(sumWhere(queries, { shard: kit.shardFor(1), intent: 'write' })).to.be.greaterThan(0);
      // Every statement counts, including the catalog lookup of users' key column.
      const statements = await metricValues(registry, 'shardkit_statements_total');
      expect(sumWhere(statements, { purpose: 'query', outcome: 'ok' })).to.equal(10 + 5 + shards);
      expect(sumWhere(statements, { purpose: 'query', outcome: 'QUERY_FAILED' })).to.equal(1);
      expect(sumWhere(statements, { purpose: 'maintenance' })).to.be.greaterThan(0);
      const latency = await metricValues(registry, 'shardkit_query_duration_seconds');
      expect(sumWhere(latency, {}, 'shardkit_query_duration_seconds_count')).to.equal(10 + 5 + shards + 1);
      const errors = await metricValues(registry, 'shardkit_query_errors_total');
      expect(sumWhere(errors, { code: 'QUERY_FAILED', shard: kit.shardFor(1) })).to.equal(1);
      const fanOut = await metricValues(registry, 'shardkit_scatter_fanout_shards');
      expect(sumWhere(fanOut, { table: 'users' }, 'shardkit_scatter_fanout_shards_count')).to.equal(1);
      expect(sumWhere(fanOut, { table: 'users' }, 'shardkit_scatter_fanout_shards_sum')).to.equal(shards);
      const breakers = await metricValues(registry, 'shardkit_breaker_state');
      expect(breakers.map((entry) => entry.value)).to.deep.equal(kit.topology.nodes().map(() => 0));
      expect(await registry.metrics()).to.match(/^shardkit_node_in_flight\{shard="emb-1",node="emb-1-primary",role="primary"\} 0$/m);
    } finally {
      detach();
      await kit.close();
    }
    expect(registry.getMetricsAsArray()).to.deep.equal([]);
  });

  it('never shows a password: not in errors, logs, status, metrics or the CLI', async () => {
    const secret = 'pw-Zq81-never-print-me';
    // Nothing listens on port 9 of 127.0.0.1: every query fails at the node.
    const config: ShardKitConfig = {
      shards: [
        { name: 'down-a', primary: { dialect: 'postgres', connection: { host: '127.0.0.1', port: 9, user: 'app', password: secret, database: 'x' } } },
        { name: 'down-b', primary: { dialect: 'postgres', connection: `postgres://app:${secret}@127.0.0.1:9/x` } },
      ],
      tables: { users: { shardKey: 'id' } },
      breaker: { volumeThreshold: 2, resetTimeoutMs: 60_000 },
    };
    const seen: string[] = [];
    const lines: LogLine[] = [];
    const kit: ShardKit = await createShardKit(config);
    const { registry, detach } = instrumentKit(kit);
    const stopLogging = logStateChanges(kit, collectingLogger(lines));
    try {
      for (let attempt = 0; attempt < 4; attempt++) {
        for (const run of [() => kit.table('users').where('id', attempt).first(), () => kit.table('users').select('id'), () => kit.table('users').insert({ id: attempt })]) {
          const error = await run().then(
            () => undefined,
            (caught: unknown) => caught,
          );
          expect(error, 'the query should fail').to.be.instanceOf(Error);
          seen.push(inspect(error, { depth: 8 }), String(error), JSON.stringify(error));
        }
      }
      // With no shard answering, gather fails too.
      const gathered = await kit.gather(kit.table('users').select('id')).catch((error: unknown) => error);
      seen.push(inspect(gathered, { depth: 8 }));
      seen.push(inspect(await kit.status({ probe: true, probeTimeoutMs: 500 }), { depth: 8 }), await registry.metrics());
      // The kit and its config, every way a program could print or serialise them.
      seen.push(
        inspect(kit),
        inspect(kit, { depth: Number.POSITIVE_INFINITY }),
        inspect(kit.config, { depth: Number.POSITIVE_INFINITY, showHidden: true }),
        JSON.stringify(kit),
        JSON.stringify(kit.config),
        JSON.stringify(kit.config.shards),
        inspect(kit.forShard('down-a'), { depth: 3 }),
      );
      expect(lines.some((line) => line.message === 'breaker opened')).to.equal(true);
      seen.push(inspect(lines, { depth: 8 }));
    } finally {
      stopLogging();
      detach();
      await kit.close();
    }
    const invalid = await createShardKit({ ...config, shards: [{ ...config.shards[1]!, weight: -1 }] }).catch((error: unknown) => error);
    seen.push(inspect(invalid, { depth: 8 }));
    const cli = await new Promise<{ output: string; code: number }>((resolve) => {
      execFile(process.execPath, ['bin/shardkit.js', 'status', '--config', 'test/support/unreachable.config.ts'], { env: { ...process.env, SECRET_FOR_TEST: secret } }, (error, stdout, stderr) =>
        resolve({ output: stdout + stderr, code: error ? Number((error as { code?: number }).code) : 0 }),
      );
    });
    seen.push(cli.output);
    expect(cli.output).to.match(/down-a/);
    expect(cli.code, 'status exits 5 when a node is down').to.equal(5);
    const leaks = seen.filter((text) => text.includes(secret));
    expect(leaks, leaks[0]).to.deep.equal([]);
  });

  it('shardkit status --json reports the local cluster as configured', async () => {
    const output = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ['bin/shardkit.js', 'status', '--json', '--config', 'shards.cluster.config.ts'], (error, stdout, stderr) =>
        error ? reject(new Error(stderr)) : resolve(stdout),
      );
    });
    const status = JSON.parse(output) as { shards: { shard: string; slots: number; standby: boolean }[]; nodes: Record<string, unknown>[] };
    expect(status.shards.map((shard) => shard.shard)).to.deep.equal(clusterConfig.shards.map((shard) => shard.name));
    expect(status.shards.reduce((sum, shard) => sum + shard.slots, 0)).to.equal(1_048_576);
    const expected = clusterConfig.shards.flatMap((shard) =>
      [shard.primary!, ...(shard.replicas ?? [])].map((node, index) => {
        const { host, port } = node.connection as { host: string; port: number };
        return { shard: shard.name, role: index === 0 ? 'primary' : 'replica', where: `postgres://shardkit@${host}:${port}/shardkit` };
      }),
    );
    expect(status.nodes.map(({ shard, role, where }) => ({ shard, role, where }))).to.deep.equal(expected);
    for (const node of status.nodes.filter((entry) => entry.role === 'replica')) {
      expect(node.breaker).to.equal('closed');
      expect(node.lagMs, `${node.node} lag measured`).to.be.a('number').and.below(1000);
    }
  });

  it('logs a replica excluded for lag while its replay is paused, and readmitted after, on the PostgreSQL cluster', async () => {
    const kit = await createShardKit({ ...clusterConfig, reads: { maxLagMs: 500 }, lagMonitor: { intervalMs: 50 } });
    const lines: LogLine[] = [];
    const stopLogging = logStateChanges(kit, collectingLogger(lines));
    const replica = kit.topology.shards[0]!.replicas[0]!;
    const control = new ServerControl(replica);
    try {
      await sleep(300);
      const pausedFrom = lines.length;
      await control.pauseReplay();
      await sleep(1500);
      const resumedFrom = lines.length;
      await control.resumeReplay();
      await sleep(1000);
      const about = (from: number, to: number) => lines.slice(from, to).filter((line) => line.fields.node === replica.config.name);
      // Fresh before (any line so far admits it); the paused replay excludes it, with its lag; replay again readmits it.
      expect(about(0, pausedFrom).every((line) => line.message === 'replica readmitted for reads')).to.equal(true);
      const excluded = about(pausedFrom, resumedFrom).find((line) => line.message === 'replica excluded from reads');
      expect(excluded?.level).to.equal('warn');
      expect(excluded?.fields.lagMs).to.be.a('number').and.above(500);
      expect(about(resumedFrom, lines.length).at(-1)?.message).to.equal('replica readmitted for reads');
    } finally {
      await control.resumeReplay().catch(() => undefined);
      stopLogging();
      await kit.close();
    }
  });
});
