/**
 * Where a resolved node's connection settings (credentials included) are kept: beside the
 * config, not in it, so that printing, logging or serialising a config or a kit never shows a
 * password. Only the dialects read them, to open the node.
 */
import type { PgliteConnection, ResolvedNode, ServerConnection } from './config-types.js';

const connections = new WeakMap<ResolvedNode, ServerConnection | PgliteConnection>();

export function sealConnection<T extends ResolvedNode>(node: T, connection: ServerConnection | PgliteConnection): T {
  connections.set(node, connection);
  return node;
}

export function connectionOf(node: ResolvedNode): ServerConnection | PgliteConnection {
  const connection = connections.get(node);
  if (connection === undefined) throw new RangeError(`node ${node.name} was not resolved by resolveConfig()`);
  return connection;
}

const redisUrls = new WeakMap<object, string>();

/** Keeps the Redis URL of a resolved cache config beside it (it may hold a password). */
export function sealRedisUrl<T extends object>(redis: T, url: string): T {
  redisUrls.set(redis, url);
  return redis;
}

export function redisUrlOf(redis: object): string {
  const url = redisUrls.get(redis);
  if (url === undefined) throw new RangeError('the cache config was not resolved by resolveConfig()');
  return url;
}
