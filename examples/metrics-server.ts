/**
 * Serving shardkit's metrics to Prometheus, with state changes logged by pino:
 *
 *   npx tsx examples/metrics-server.ts        then: curl localhost:9464/metrics
 *
 * Uses the default topology (shards.config.ts) unless SHARDKIT_CONFIG names another.
 */
import { createServer } from 'node:http';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { createShardKit, instrumentKit, loadConfig, logStateChanges } from '../lib/index.js';

const kit = await createShardKit(await loadConfig());
const registry = new Registry();
instrumentKit(kit, { registry });
logStateChanges(kit, pino());

const server = createServer(async (request, response) => {
  if (request.url !== '/metrics') {
    response.writeHead(404).end();
    return;
  }
  response.writeHead(200, { 'content-type': registry.contentType }).end(await registry.metrics());
});
server.listen(9464, () => console.log('metrics on http://localhost:9464/metrics (Ctrl-C stops)'));
process.once('SIGINT', () => server.close(() => void kit.close()));
