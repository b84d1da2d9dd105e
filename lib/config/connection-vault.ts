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
