/**
 * npm run rebalance -- [plan] [--add NAME] [--remove NAME] [--weight NAME=W] [--config PATH]:
 * the same as `shardkit rebalance ...`.
 */
import { main } from '../lib/cli/main.js';

const args = process.argv.slice(2);
process.exitCode = await main(['rebalance', ...(args[0] && !args[0].startsWith('-') ? args : ['plan', ...args])]);
