/**
 * knex prints failed connection attempts and failed migrations to the console; shardkit
 * reports them as typed errors, breaker states and kit.status() instead, so only deprecations
 * are shown.
 */
export const quietKnexLog = {
  warn: () => {},
  error: () => {},
  debug: () => {},
  deprecate: (method: string, alternative: string) => console.warn(`knex: ${method} is deprecated, use ${alternative}`),
};
