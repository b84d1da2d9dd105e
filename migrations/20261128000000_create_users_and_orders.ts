import type { Knex } from 'knex';

/**
 * The demo schema, applied to every shard. Ids come from the application (a shard cannot hand
 * out globally unique sequence values), and orders carry user_id so that a user's orders live
 * on the user's shard: `orders` is sharded by user_id, `users` by id.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('users', (table) => {
    table.bigInteger('id').primary();
    table.string('name', 200).notNullable();
    table.string('email', 320).notNullable();
    table.timestamp('created_at').notNullable().defaultTo(knex.fn.now());
  });
  await knex.schema.createTable('orders', (table) => {
    table.bigInteger('user_id').notNullable();
    table.bigInteger('id').notNullable();
    table.integer('amount_cents').notNullable();
    table.string('status', 20).notNullable().defaultTo('new');
    table.timestamp('created_at').notNullable().defaultTo(knex.fn.now());
    table.primary(['user_id', 'id']);
  });
  await knex.schema.createTable('countries', (table) => {
    table.string('code', 2).primary();
    table.string('name', 100).notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('countries');
  await knex.schema.dropTable('orders');
  await knex.schema.dropTable('users');
}
