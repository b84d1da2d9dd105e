#!/usr/bin/env node
// The shardkit command. It runs under tsx so that TypeScript configs and migrations load.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../lib/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
