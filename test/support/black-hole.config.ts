/** One shard on the black-hole listener whose port is in BLACK_HOLE_PORT: the CLI's deadline test. */
import { defineConfig } from '../../lib/index.js';

export default defineConfig({
  shards: [{ name: 'hole', primary: { dialect: 'postgres', connection: { host: '127.0.0.1', port: Number(process.env.BLACK_HOLE_PORT), user: 'app', database: 'x' } } }],
  tables: { users: { shardKey: 'id', keyType: 'integer' } },
  timeouts: { queryMs: 1000, connectMs: 1000, closeMs: 500 },
});
