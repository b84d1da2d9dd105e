import { QueryFailedError, ShardKitError } from '../errors.js';
import type { NodeHandle } from '../topology/topology.js';

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
