/**
 * The zod schema for ShardKitConfig: types, required fields and unknown keys (a typo such as
 * `shardkey` is an error, not a silently ignored option). Rules that relate several fields
 * (duplicate names, the global shard, one SQL family) live in resolve-config.ts.
 */
import { z } from 'zod';
import { DIALECTS } from './config-types.js';

const nodeSchema = z.strictObject({
  name: z.string().min(1).optional(),
  dialect: z.enum(DIALECTS, {
    error: (issue) =>
      issue.input === undefined
        ? 'is required: one of postgres, mysql, pglite'
        : `unknown dialect ${JSON.stringify(String(issue.input))}; use one of ${DIALECTS.join(', ')}`,
  }),
  connection: z.union([z.string().min(1), z.record(z.string(), z.unknown())], {
    error: 'must be a connection string or a connection object',
  }),
  pool: z
    .strictObject({
      min: z.number().int().min(0).optional(),
      max: z.number().int().min(1).optional(),
    })
    .optional(),
});

const shardSchema = z.strictObject({
  name: z.string({ error: 'is required' }),
  weight: z.number({ error: 'must be a number' }).optional(),
  primary: nodeSchema.optional(),
  replicas: z.array(nodeSchema).optional(),
});

const tableSchema = z.strictObject({
  shardKey: z.string({ error: 'is required: the column that decides which shard a row lives on' }).min(1, {
    error: 'must name a column',
  }),
});

export const configSchema = z.strictObject({
  shards: z.array(shardSchema, { error: 'is required: a list of shards' }).min(1, { error: 'needs at least one shard' }),
  tables: z.record(z.string().min(1), tableSchema, { error: 'is required: sharded tables and their shard keys' }),
  globalTables: z.array(z.string().min(1)).optional(),
  globalShard: z.string().optional(),
});

export type ParsedConfig = z.output<typeof configSchema>;
