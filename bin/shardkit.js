#!/usr/bin/env node
// The shardkit command: the compiled CLI. A TypeScript config or migration is loaded through
// tsx only when one is met (see lib/config/typescript-loader.ts).
import { main } from '../dist/lib/cli/main.js';

// `shardkit status --watch | head`: the reader went away; that is the end, not an error.
process.stdout.on('error', (error) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});
process.exitCode = await main(process.argv.slice(2));
