/**
 * Makes a table refuse writes on one database with a trigger, as a lock timeout, a constraint
 * trigger or a brief outage would refuse a dual write's copy. Targets are named as in targets.ts.
 */
import type { Knex } from 'knex';

/** A trigger that fails every insert and update of `table` on this database (a sync that cannot land). */
export async function refuseWrites(db: Knex, family: string, table: string): Promise<void> {
  if (family.startsWith('postgres')) {
    await db.raw("create or replace function shardkit_test_refuse() returns trigger language plpgsql as $$ begin raise exception 'refused by the test'; end $$");
    await db.raw(`create trigger shardkit_test_refuse before insert or update on ${table} for each row execute function shardkit_test_refuse()`);
  } else {
    for (const event of ['insert', 'update']) {
      await db.raw(`create trigger shardkit_test_refuse_${event} before ${event} on ${table} for each row signal sqlstate '45000' set message_text = 'refused by the test'`);
    }
  }
}

export async function allowWrites(db: Knex, family: string, table: string): Promise<void> {
  if (family.startsWith('postgres')) await db.raw(`drop trigger if exists shardkit_test_refuse on ${table}`);
  else for (const event of ['insert', 'update']) await db.raw(`drop trigger if exists shardkit_test_refuse_${event}`);
}
