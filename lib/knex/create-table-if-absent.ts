/**
 * Creates a table shardkit keeps for itself (move markers, the sync outbox, the decision log)
 * unless it exists. Two processes may create it at the same moment: the one that loses sees
 * the winner's table and carries on.
 */
import type { Knex } from 'knex';

export async function createTableIfAbsent(db: Knex, name: string, build: (table: Knex.CreateTableBuilder) => void): Promise<void> {
  if (await db.schema.hasTable(name)) return;
  await db.schema.createTable(name, build).catch(async (error: unknown) => {
    if (!(await db.schema.hasTable(name))) throw error;
  });
}
