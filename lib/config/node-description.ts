/**
 * Printable node locations and secret registration. A node is described by dialect, user,
 * host, port and database, never its password; every password found in a connection is
 * registered with the redactor so it cannot leak through an error message either.
 */
import { registerSecret } from '../security/secret-redactor.js';
import type { Dialect, PgliteConnection, ServerConnection } from './config-types.js';

export function describeConnection(dialect: Dialect, connection: ServerConnection | PgliteConnection): string {
  if (dialect === 'pglite') {
    const dataDir = (connection as PgliteConnection).dataDir;
    return `pglite:${dataDir ?? 'memory'}`;
  }
  if (typeof connection === 'string') return describeUrl(dialect, connection);
  const fields = connection as Record<string, unknown>;
  if (typeof fields.connectionString === 'string') return describeUrl(dialect, fields.connectionString);
  const user = typeof fields.user === 'string' ? `${fields.user}@` : '';
  const host = fields.socketPath ?? fields.host ?? 'localhost';
  const port = fields.port === undefined ? '' : `:${fields.port}`;
  const database = fields.database === undefined ? '' : `/${fields.database}`;
  return `${dialect}://${user}${host}${port}${database}`;
}

function describeUrl(dialect: Dialect, text: string): string {
  try {
    const url = new URL(text);
    const user = url.username ? `${decodeURIComponent(url.username)}@` : '';
    return `${dialect}://${user}${url.host}${url.pathname === '/' ? '' : url.pathname}`;
  } catch {
    return `${dialect}://(unparseable connection string)`;
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
