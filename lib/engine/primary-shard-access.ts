import { QueryFailedError, ShardKitError } from '../errors.js';
import { type AnyQueryBuilder, bindToClient } from '../planner/builder-internals.js';
import type { NodeHandle, Topology } from '../topology/topology.js';
import type { QueryIntent, ShardAccess } from './shard-access.js';

/** Runs every query on its shard's primary. */
export class PrimaryShardAccess implements ShardAccess {
  constructor(private readonly topology: Topology) {}

  async run(shard: string, _intent: QueryIntent, builder: AnyQueryBuilder): Promise<unknown> {
    const node = this.topology.shard(shard).primary;
    try {
      return await bindToClient(builder, node.knex.client);
    } catch (error) {
      throw asQueryFailure(error, node);
    }
  }
}

/** A driver error as a QueryFailedError that names the shard and node and keeps the original as cause. */
export function asQueryFailure(error: unknown, node: NodeHandle): ShardKitError {
  if (error instanceof ShardKitError) return error;
  const { retryable, driverCode } = node.dialect.classifyError(error);
  const reason = error instanceof Error ? error.message : String(error);
  return new QueryFailedError(`query on shard ${node.config.shard} (node ${node.config.name}) failed: ${reason}`, {
    cause: error,
    shard: node.config.shard,
    node: node.config.name,
    retryable,
    ...(driverCode === undefined ? {} : { driverCode }),
  });
}
