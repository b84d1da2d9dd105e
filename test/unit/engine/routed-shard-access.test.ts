import { expect } from 'chai';
import knexModule from 'knex';
import { RoutedShardAccess } from '../../../lib/engine/routed-shard-access.js';
import type { ShardRequest } from '../../../lib/engine/shard-access.js';
import { ShardUnavailableError, UnsupportedQueryError } from '../../../lib/errors.js';
import { guardedClient } from '../../../lib/knex/guarded-client.js';
import type { ReadRouter } from '../../../lib/replicas/read-router.js';
import type { NodeHandle, ShardHandle, Topology } from '../../../lib/topology/topology.js';

/**
 * The primary's retry loop, with a shard whose failover is a recording fake and a node whose
 * every statement fails as `failure()` says: what a read does while the shard switches.
 */
function shardOf(failure: () => Error, switches: 'every-attempt' | 'never') {
  const suspected: Error[] = [];
  let attempts = 0;
  class FailingClient {
    runner() {
      return {
        run: () => {
          attempts++;
          return Promise.reject(failure());
        },
      };
    }
  }
  const node = {
    config: { name: 's1-primary', shard: 's1', description: 's1-primary (test)' },
    dialect: { classifyError: () => ({ nodeFault: false, retryable: false }) },
    // The guarded client over a base whose runner fails: the access reaches nodes through it.
    knex: { client: new (guardedClient(FailingClient, {} as never, () => undefined, () => false, () => 0))() },
  } as unknown as NodeHandle;
  const failover = {
    canSwitch: true,
    epoch: 0,
    resumed: 0,
    ready: async () => node,
    suspect: (_node: NodeHandle, error: Error) => {
      suspected.push(error);
      // Each suspicion ends in a switch (back and forth between two nodes), or in none.
      if (switches === 'every-attempt') failover.epoch++;
    },
  };
  const shard = { name: 's1', primary: node, replicas: [], failover } as unknown as ShardHandle;
  const topology = { shard: () => shard, roleOf: () => 'primary' } as unknown as Topology;
  const router = { choose: async () => ({ node }) } as unknown as ReadRouter;
  const access = new RoutedShardAccess(topology, router, { listenerCount: () => 0, emit: () => false });
  return { access, suspected, attempts: () => attempts };
}

const readRequest: ShardRequest = {
  intent: 'read',
  table: 'users',
  method: 'select',
  routing: { read: { from: 'primary', maxLagMs: 1000, fallback: 'primary', waitMs: 0 }, priority: 'normal', deadline: Number.POSITIVE_INFINITY, timeoutMs: 1000 },
};
const builder = () => knexModule.knex({ client: 'pg' })('users').where('id', 1);

describe('reads on a primary that fails (RoutedShardAccess)', () => {
  it('gives up after 10 attempts on a shard switched back and forth, each failure reported to its failover', async () => {
    const { access, suspected, attempts } = shardOf(() => new ShardUnavailableError('s1', 's1-primary', 100), 'every-attempt');
    const error = await access.run('s1', readRequest, builder()).catch((failure: unknown) => failure);
    expect(error).to.be.instanceOf(ShardUnavailableError);
    expect(attempts(), 'attempts in all').to.equal(10);
    expect(suspected, 'the last failure too is reported').to.have.length(10);
  });

  it('tries once and reports nothing for a failure that no switch explains', async () => {
    const { access, suspected, attempts } = shardOf(() => new UnsupportedQueryError('select', 'not here'), 'never');
    const error = await access.run('s1', readRequest, builder()).catch((failure: unknown) => failure);
    expect(error).to.be.instanceOf(UnsupportedQueryError);
    expect(attempts()).to.equal(1);
    expect(suspected).to.have.length(0);
  });
});
