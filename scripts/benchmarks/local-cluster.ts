/**
 * Benchmarks that need the local database cluster start it (scripts/cluster.sh up) when it is
 * not running, and stop it again afterwards if they started it, as npm test does.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
// npm runs scripts from the package root; benchmarks run compiled from .bench/.
const SCRIPT = join(process.cwd(), 'scripts', 'cluster.sh');

export async function withLocalCluster<T>(work: () => Promise<T>): Promise<T> {
  const running = await run('bash', [SCRIPT, 'status']).then(
    () => true,
    () => false,
  );
  if (!running) await run('bash', [SCRIPT, 'up']);
  try {
    return await work();
  } finally {
    if (!running) await run('bash', [SCRIPT, 'down']);
  }
}
