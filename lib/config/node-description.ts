/**
 * Printable node locations and secret registration. A node is described by dialect, user,
 * host, port and database, never its password; every password found in a connection is
 * registered with the redactor so it cannot leak through an error message either.
 */
import { registerSecret } from '../security/secret-redactor.js';
import { optional } from '../util/optional.js';
import type { Dialect, NodeAddress, PgliteConnection, ServerConnection } from './config-types.js';

export function addressOf(dialect: Dialect, connection: ServerConnection | PgliteConnection): NodeAddress | undefined {
  if (dialect === 'pglite') return {};
  if (typeof connection === 'string') return urlAddress(connection);
  const fields = connection as Record<string, unknown>;
  if (typeof fields.connectionString === 'string') return urlAddress(fields.connectionString);
  const text = (value: unknown) => (typeof value === 'string' ? value : undefined);
  const port = fields.port === undefined ? undefined : Number(fields.port);
  return {
    ...optional('host', text(fields.socketPath) ?? text(fields.host) ?? 'localhost'),
    ...optional('port', Number.isFinite(port) ? port : undefined),
    ...optional('database', text(fields.database)),
    ...optional('user', text(fields.user)),
  };
}

export function describeConnection(dialect: Dialect, connection: ServerConnection | PgliteConnection): string {
  if (dialect === 'pglite') return `pglite:${(connection as PgliteConnection).dataDir ?? 'memory'}`;
  const address = addressOf(dialect, connection);
  if (!address) return `${dialect}://(unparseable connection string)`;
  const user = address.user ? `${address.user}@` : '';
  const port = address.port === undefined ? '' : `:${address.port}`;
  const database = address.database === undefined ? '' : `/${address.database}`;
  return `${dialect}://${user}${address.host ?? 'localhost'}${port}${database}`;
}

function urlAddress(text: string): NodeAddress | undefined {
  try {
    const url = new URL(text);
    const database = url.pathname.replace(/^\//, '');
    return {
      host: url.hostname || 'localhost',
      ...optional('port', url.port ? Number(url.port) : undefined),
      ...optional('database', database ? decodeURIComponent(database) : undefined),
      ...optional('user', url.username ? decodeURIComponent(url.username) : undefined),
    };
  } catch {
    return undefined;
  }
}

export function registerConnectionSecrets(connection: ServerConnection | PgliteConnection): void {
  if (typeof connection === 'string') {
    registerUrlPassword(connection);
    return;
  }
  const fields = connection as Record<string, unknown>;
  if (typeof fields.password === 'string') registerSecret(fields.password);
  if (typeof fields.connectionString === 'string') registerUrlPassword(fields.connectionString);
}

const KEYWORD_PASSWORD = /password\s*=\s*(?:'((?:[^'\\]|\\.)*)'|(\S+))/i;

function registerUrlPassword(text: string): void {
  try {
    const password = new URL(text).password;
    if (password) {
      registerSecret(password);
      registerSecret(decodeURIComponent(password));
    }
  } catch {
    // A libpq keyword string: "host=... password=secret".
    const match = KEYWORD_PASSWORD.exec(text);
    registerSecret(match?.[1] ?? match?.[2]);
  }
}
