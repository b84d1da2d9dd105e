#!/usr/bin/env node
// The shardkit command. It runs under tsx so that TypeScript configs and migrations load.
import { register } from 'tsx/esm/api';

// `shardkit status --watch | head`: the reader went away; that is the end, not an error.
process.stdout.on('error', (error) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});
register();
const { main } = await import('../lib/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
