/**
 * The driver settings of a server node: the user's connection with shardkit's bounds added
 * where the user set none: a connect timeout, TCP keep-alive, and a socket factory that
 * registers every socket the driver opens (see access/socket-registry.ts).
 */
import { connect, Socket } from 'node:net';
import type { ServerConnection } from '../config/config-types.js';

export interface ConnectionBounds {
  /** Told of every socket a driver opens (access/socket-registry.ts). */
  sockets: { track<T extends Socket>(socket: T): T };
  connectMs: number;
}

type Settings = Record<string, unknown>;

/** node-postgres: a connection string becomes `connectionString`, so options can sit beside it. */
export function postgresSettings(connection: ServerConnection, bounds: ConnectionBounds): Settings {
  const settings: Settings = typeof connection === 'string' ? { connectionString: connection } : { ...connection };
  settings.connectionTimeoutMillis ??= bounds.connectMs;
  settings.keepAlive ??= true;
  settings.stream ??= () => bounds.sockets.track(new Socket());
  return settings;
}

/** mysql2: a connection string becomes `uri`; a stream factory must return a connecting socket. */
export function mysqlSettings(connection: ServerConnection, bounds: ConnectionBounds): Settings {
  const settings: Settings = typeof connection === 'string' ? { uri: connection } : { ...connection };
  settings.connectTimeout ??= bounds.connectMs;
  settings.enableKeepAlive ??= true;
  settings.stream ??= (options: { config: { socketPath?: string; port?: number; host?: string } }) => {
    const { socketPath, port, host } = options.config;
    const socket = socketPath ? connect(socketPath) : connect(port ?? 3306, host ?? 'localhost');
    socket.setNoDelay(true);
    socket.once('connect', () => socket.setKeepAlive(true));
    return bounds.sockets.track(socket);
  };
  return settings;
}
