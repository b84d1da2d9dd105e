import type { Knex } from 'knex';

/** The target of the users -> users_v2 online migration (migrations/online/users-v2.ts): name split in two. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('users_v2', (table) => {
    table.bigInteger('id').primary();
    table.string('first_name', 200).notNullable();
    table.string('last_name', 200).notNullable();
    table.string('email', 320).notNullable();
    table.timestamp('created_at').notNullable().defaultTo(knex.fn.now());
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('users_v2');
}
