import { expect } from 'chai';
import { resolveConfig } from '../../../lib/config/resolve-config.js';
import { ConfigError } from '../../../lib/errors.js';

const pg = (port: number) => ({ dialect: 'postgres', connection: { host: '127.0.0.1', port, user: 'app', database: 'app' } });

function validConfig(): any {
  return {
    shards: [
      { name: 'a', primary: pg(5001), replicas: [pg(5002)] },
      { name: 'b', weight: 2, primary: pg(5003) },
    ],
    tables: { users: { shardKey: 'id' }, orders: { shardKey: 'user_id' } },
    globalTables: ['countries'],
  };
}

function configError(config: unknown): ConfigError {
  try {
    resolveConfig(config);
  } catch (error) {
    expect(error).to.be.instanceOf(ConfigError);
    expect(error).to.have.property('code', 'CONFIG_INVALID');
    return error as ConfigError;
  }
  throw new Error('expected the config to be rejected');
}

function expectIssue(config: unknown, path: string, fragment: string): void {
  const error = configError(config);
  const issue = error.issues.find((candidate) => candidate.path === path);
  expect(issue, `no issue at ${path}; got ${JSON.stringify(error.issues)}`).to.not.equal(undefined);
  expect(issue!.message).to.contain(fragment);
  expect(error.message).to.contain(path);
}

describe('config validation', () => {
  it('resolves failover candidates among the shard\'s replicas, with the hold window defaulting to 10 s', () => {
    const config = validConfig();
    config.shards[0].failoverCandidates = ['a-replica1'];
    const resolved = resolveConfig(config);
    expect(resolved.shards.map((shard) => shard.failoverCandidates)).to.deep.equal([['a-replica1'], []]);
    expect(resolved.failover).to.deep.equal({ holdMs: 10_000, probeIntervalMs: 200, pollIntervalMs: 1000 });
  });

  it('rejects a failover candidate that is not one of the shard\'s replicas, or named twice', () => {
    const config = validConfig();
    config.shards[0].failoverCandidates = ['b-primary'];
    expectIssue(config, 'shards[0].failoverCandidates[0]', '"b-primary" is not a replica of shard a (its replicas: a-replica1)');
    config.shards[0].failoverCandidates = ['a-replica1', 'a-replica1'];
    expectIssue(config, 'shards[0].failoverCandidates[1]', 'duplicate candidate "a-replica1"');
    config.shards[0].failoverCandidates = [];
    config.shards[1].failoverCandidates = ['b-replica1'];
    expectIssue(config, 'shards[1].failoverCandidates[0]', 'it has none');
  });

  it('resolves a valid config with defaults and printable node descriptions', () => {
    const resolved = resolveConfig(validConfig());
    expect(resolved.shards.map((shard) => [shard.name, shard.weight])).to.deep.equal([
      ['a', 1],
      ['b', 2],
    ]);
    expect(resolved.shards[0]!.primary.name).to.equal('a-primary');
    expect(resolved.shards[0]!.replicas[0]!.name).to.equal('a-replica1');
    expect(resolved.shards[0]!.primary.description).to.equal('postgres://app@127.0.0.1:5001/app');
    expect(resolved.globalShard).to.equal('a');
    expect(resolved.family).to.equal('postgres');
  });

  it('rejects duplicate shard names', () => {
    const config = validConfig();
    config.shards[1].name = 'a';
    expectIssue(config, 'shards[1].name', 'duplicate shard name "a"');
  });

  it('rejects duplicate node names', () => {
    const config = validConfig();
    config.shards[0].primary.name = 'db-1';
    config.shards[1].primary.name = 'db-1';
    expectIssue(config, 'shards[1].primary.name', 'duplicate node name "db-1"');
  });

  it('rejects a weight below the minimum (zero, negative, vanishingly small)', () => {
    for (const weight of [0, -1, 1e-9, 0.009]) {
      const config = validConfig();
      config.shards[1].weight = weight;
      expectIssue(config, 'shards[1].weight', 'must be a number >= 0.01');
    }
  });

  it('rejects an unknown dialect, naming the ones that exist', () => {
    const config = validConfig();
    config.shards[0].replicas[0].dialect = 'oracle';
    expectIssue(config, 'shards[0].replicas[0].dialect', 'unknown dialect "oracle"; use one of postgres, mysql, pglite');
  });

  it('rejects a shard without a primary', () => {
    const config = validConfig();
    delete config.shards[1].primary;
    expectIssue(config, 'shards[1].primary', 'shard "b" has no primary node');
  });

  it('rejects a sharded table without a shard key', () => {
    const config = validConfig();
    config.tables.orders = {};
    expectIssue(config, 'tables.orders.shardKey', 'is required');
  });

  it('rejects a global table that is also sharded, and a global shard that does not exist', () => {
    const config = validConfig();
    config.globalTables = ['countries', 'users'];
    config.globalShard = 'z';
    const error = configError(config);
    expect(error.issues.map((issue) => issue.path)).to.have.members(['globalTables[1]', 'globalShard']);
  });

  it('rejects unknown options instead of ignoring a typo', () => {
    const config = validConfig();
    config.tables.users = { shardkey: 'id' };
    expectIssue(config, 'tables.users', 'Unrecognized key: "shardkey"');
  });

  it('rejects mixing PostgreSQL and MySQL nodes in one kit, and replicas on pglite', () => {
    const mixed = validConfig();
    mixed.shards[1].primary = { dialect: 'mysql', connection: { host: 'h' } };
    expectIssue(mixed, 'shards', 'one SQL family');
    const embedded = { ...validConfig(), shards: [{ name: 'e', primary: { dialect: 'pglite', connection: {} }, replicas: [{ dialect: 'pglite', connection: {} }] }] };
    expectIssue(embedded, 'shards[0].replicas', 'pglite has no replication');
  });

  it('reports every problem at once', () => {
    const config = validConfig();
    config.shards[0].weight = 0;
    config.globalShard = 'z';
    expect(configError(config).issues.map((issue) => issue.path)).to.deep.equal(['shards[0].weight', 'globalShard']);
  });

  it('never prints a password from a connection string or object', () => {
    const config = validConfig();
    config.shards[0].primary.connection = 'postgres://app:url-secret-42@db.internal:5432/app';
    config.shards[1].primary.connection = { host: 'db2', user: 'app', password: 'object-secret-42' };
    config.shards[1].weight = -1;
    config.shards[1].primary.dialect = 'nosql';
    const error = configError(config);
    const printed = `${error.message}\n${JSON.stringify(error.issues)}\n${error.stack}`;
    expect(printed).to.not.contain('url-secret-42');
    expect(printed).to.not.contain('object-secret-42');
    const resolved = resolveConfig({ ...validConfig(), shards: [{ name: 'a', primary: config.shards[0].primary }] });
    expect(resolved.shards[0]!.primary.description).to.equal('postgres://app@db.internal:5432/app');
  });
});

describe('config validation, completed', () => {
  const cases: [string, (config: any) => void, string, string][] = [
    ['a timer beyond 2^31-1 ms (Node would fire it at once)', (c) => (c.lagMonitor = { intervalMs: 2 ** 31 }), 'lagMonitor.intervalMs', 'at most 2147483647 ms'],
    ['a query timeout beyond 2^31-1 ms', (c) => (c.timeouts = { queryMs: 2 ** 40 }), 'timeouts.queryMs', 'at most'],
    ['a breaker reset beyond 2^31-1 ms', (c) => (c.breaker = { resetTimeoutMs: 2 ** 31 }), 'breaker.resetTimeoutMs', 'at most'],
    ['a pool whose min is above its max', (c) => (c.shards[0].primary.pool = { min: 5, max: 1 }), 'shards[0].primary.pool', 'min must not be greater than max'],
    ['a weight of 1e-9', (c) => (c.shards[1].weight = 1e-9), 'shards[1].weight', '>= 0.01'],
    ['a global table listed twice', (c) => (c.globalTables = ['countries', 'countries']), 'globalTables[1]', 'duplicate global table'],
    ['an unknown key type', (c) => (c.tables.users.keyType = 'number'), 'tables.users.keyType', 'must be one of'],
  ];
  for (const [name, mutate, path, fragment] of cases) {
    it(`rejects ${name}`, () => {
      const config = validConfig();
      mutate(config);
      expectIssue(config, path, fragment);
    });
  }

  it('answers a fuzz of configs with a resolved config or a ConfigError, never another error', () => {
    // Random values of every type at random places of a valid config.
    let seed = 12_345;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed / 2_147_483_648;
    };
    const values: unknown[] = [null, undefined, 0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31, '', 'x', '5', true, [], {}, [1], { a: 1 }, () => 1, 10n, Symbol('s')];
    const paths = [
      ['shards'],
      ['shards', 0],
      ['shards', 0, 'name'],
      ['shards', 0, 'weight'],
      ['shards', 0, 'primary'],
      ['shards', 0, 'primary', 'dialect'],
      ['shards', 0, 'primary', 'connection'],
      ['shards', 0, 'primary', 'pool'],
      ['shards', 0, 'primary', 'pool', 'max'],
      ['shards', 0, 'replicas'],
      ['shards', 1, 'standby'],
      ['tables'],
      ['tables', 'users'],
      ['tables', 'users', 'shardKey'],
      ['globalTables'],
      ['globalShard'],
      ['reads', 'maxLagMs'],
      ['lagMonitor'],
      ['breaker', 'errorThresholdPercentage'],
      ['scatter', 'concurrency'],
      ['timeouts', 'closeMs'],
      ['loadShedding', 'maxQueued'],
      ['migrations', 'pollIntervalMs'],
      ['onlineMigrations'],
    ];
    const outcomes = { resolved: 0, 'config error': 0, other: 0 };
    const others: string[] = [];
    for (let round = 0; round < 600; round++) {
      const config = validConfig();
      for (let change = 0; change < 1 + Math.floor(random() * 3); change++) {
        const path = paths[Math.floor(random() * paths.length)]!;
        let target = config;
        for (const part of path.slice(0, -1)) {
          if (typeof target[part] !== 'object' || target[part] === null) target[part] = typeof part === 'number' ? [] : {};
          target = target[part];
        }
        target[path.at(-1)!] = values[Math.floor(random() * values.length)];
      }
      try {
        resolveConfig(config);
        outcomes.resolved++;
      } catch (error) {
        if (error instanceof ConfigError) outcomes['config error']++;
        else {
          outcomes.other++;
          others.push(String(error));
        }
      }
    }
    console.log(`      600 fuzzed configs: ${JSON.stringify(outcomes)}`);
    expect(others, others[0]).to.deep.equal([]);
    expect(outcomes['config error']).to.be.greaterThan(300);
  });
});
