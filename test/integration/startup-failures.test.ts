import { execFile } from 'node:child_process';
import { inspect } from 'node:util';
import { expect } from 'chai';
import { ConnectionFailedError, createShardKit, type ShardKitConfig } from '../../lib/index.js';
import { TARGETS } from '../support/targets.js';

const WRONG = 'wrong-password-Xy7';

/** The target's config with every node's password replaced. */
function withPassword(config: ShardKitConfig, password: string): ShardKitConfig {
  const node = (nodeConfig: ShardKitConfig['shards'][number]['primary']) => ({ ...nodeConfig, connection: { ...(nodeConfig.connection as object), password } });
  return { ...config, shards: config.shards.map((shard) => ({ ...shard, primary: node(shard.primary), replicas: (shard.replicas ?? []).map(node) })) };
}

for (const target of TARGETS.filter((candidate) => candidate.name !== 'pglite')) {
  describe(`start-up failures on the ${target.name}`, function () {
    this.timeout(60_000);

    it('a wrong password (scram / mysql_native_password) is a typed, non-retryable error naming the node, without the password', async () => {
      const kit = await createShardKit(withPassword(target.config, WRONG));
      try {
        const error = await kit
          .table('users')
          .where('id', 1)
          .first()
          .catch((caught: unknown) => caught);
        expect(error).to.be.instanceOf(ConnectionFailedError);
        const failure = error as ConnectionFailedError;
        expect(failure.retryable).to.equal(false);
        expect(failure.node).to.be.a('string');
        expect(failure.message).to.include(failure.node!);
        expect(inspect(failure, { depth: Number.POSITIVE_INFINITY })).to.not.include(WRONG);
      } finally {
        await kit.close();
      }
    });

    it('a config with online migrations fails to start with the typed error when its control database refuses it', async () => {
      const config = withPassword(target.config, WRONG);
      const { default: embedded } = await import('../../shards.config.js');
      const error = await createShardKit({ ...config, onlineMigrations: embedded.onlineMigrations ?? [] }).catch((caught: unknown) => caught);
      expect(error).to.have.property('code', 'CONNECTION_FAILED');
      expect(inspect(error, { depth: Number.POSITIVE_INFINITY })).to.not.include(WRONG);
    });
  });
}

describe('start-up failures in the CLI', function () {
  this.timeout(60_000);

  it('reports a refused connection as one typed line naming the node, no stack trace, exit 1', async () => {
    const result = await new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        ['bin/shardkit.js', 'migrate', 'latest', '--config', 'test/support/unreachable.config.ts'],
        { env: { ...process.env, SECRET_FOR_TEST: WRONG } },
        (error, _stdout, stderr) => resolve({ code: error ? Number((error as { code?: number }).code) : 0, stderr }),
      );
    });
    expect(result.code).to.equal(1);
    expect(result.stderr).to.match(/CONNECTION_FAILED|SCHEMA_MIGRATION_FAILED/);
    expect(result.stderr).to.include('down-a');
    expect(result.stderr).to.not.match(/^\s+at /m);
    expect(result.stderr).to.not.include(WRONG);
  });
});
