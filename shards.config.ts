/**
 * The default topology: four embedded PGlite shards (and a fifth on standby), so the demo runs
 * with no database server.
 * Their data lives in `.shardkit/data/` (git ignores it; `SHARDKIT_DATA_DIR` moves it).
 * Point `SHARDKIT_CONFIG` at another file to use another topology, e.g. shards.cluster.config.ts.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
// Types only: the config is plain data, so the compiled CLI and this file share one copy of shardkit.
import type { ShardKitConfig } from './lib/index.js';
import { usersV2 } from './migrations/online/users-v2.js';

const dataDir = process.env.SHARDKIT_DATA_DIR || join(dirname(fileURLToPath(import.meta.url)), '.shardkit', 'data');

const shard = (name: string) => ({
  name,
  primary: { dialect: 'pglite' as const, connection: { dataDir: join(dataDir, name) } },
});

export default {
  // shard-5 owns no keys yet: the demo plans adding it with `shardkit rebalance plan --add shard-5`.
  shards: [shard('shard-1'), shard('shard-2'), shard('shard-3'), shard('shard-4'), { ...shard('shard-5'), standby: true }],
  tables: {
    users: { shardKey: 'id' },
    users_v2: { shardKey: 'id' },
    orders: { shardKey: 'user_id' },
  },
  globalTables: ['countries'],
  // The example online migration (users -> users_v2); `npm run demo` runs it through every phase.
  onlineMigrations: [usersV2],
} satisfies ShardKitConfig;
