import knexModule from 'knex';
import type { KnexClientClass } from './guarded-client.js';

/** knex's client class for `name` ('pg', 'mysql2'): a connection-less instance loads no driver. */
export function knexClientClass(name: string): KnexClientClass {
  return knexModule.knex({ client: name }).client.constructor as KnexClientClass;
}
