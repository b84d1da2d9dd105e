/** A topology nobody can reach, with a password from the environment: the CLI's redaction test. */
import { defineConfig } from '../../lib/index.js';

export default defineConfig({
  shards: [{ name: 'down-a', primary: { dialect: 'postgres', connection: `postgres://app:${process.env.SECRET_FOR_TEST ?? 'unset'}@127.0.0.1:9/x` } }],
  tables: { users: { shardKey: 'id' } },
});
