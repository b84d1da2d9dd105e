/**
 * Run as a child process by the deadline tests: opens a kit on a black-holed PostgreSQL node
 * (port in argv[2]), runs a query that times out, closes the kit and returns from main. The
 * parent measures how long the process takes to exit by itself: it must not hang on a socket.
 */
import { createShardKit } from '../../lib/index.js';

const port = Number(process.argv[2]);
const kit = await createShardKit({
  shards: [{ name: 'hole', primary: { dialect: 'postgres', connection: { host: '127.0.0.1', port, user: 'app', password: 'pw-in-child', database: 'x' } } }],
  tables: { users: { shardKey: 'id' } },
  timeouts: { queryMs: 300, connectMs: 2000, closeMs: 500 },
});
const started = performance.now();
const error = await kit.table('users').where('id', 1).first().catch((caught: unknown) => caught);
const failedAfter = performance.now() - started;
const closing = performance.now();
await kit.close();
console.log(JSON.stringify({ code: (error as { code?: string }).code, failedAfterMs: Math.round(failedAfter), closeMs: Math.round(performance.now() - closing) }));
