/**
 * npm run bench [-- NAME...] [--rows N]: runs the named benchmarks (default: all); --rows sets the
 * table size of those that move rows (backfill, rebalance). Each prints a table of
 * ratios against a baseline measured in the same process, then one JSON line as its last line.
 * They run under tsx, but the library they import is the built one (dist/lib, through
 * scripts/bench-on-dist.mjs; the bench script builds it first): the code measured is what ships,
 * and migrations/*.ts load on a fresh cluster as they do in tests.
 */
import { parseArgs } from 'node:util';
import { backfillBenchmark } from './benchmarks/backfill-benchmark.js';
import { cacheBenchmark } from './benchmarks/cache-benchmark.js';
import { overloadBenchmark } from './benchmarks/overload-benchmark.js';
import { crossShardMemoryBenchmark } from './benchmarks/cross-shard-memory-benchmark.js';
import { rebalanceBenchmark } from './benchmarks/rebalance-benchmark.js';
import { replicaReadBenchmark } from './benchmarks/replica-read-benchmark.js';
import { routingBenchmark } from './benchmarks/routing-benchmark.js';
import { scatterBenchmark } from './benchmarks/scatter-benchmark.js';
import { transactionsBenchmark } from './benchmarks/transactions-benchmark.js';

export interface BenchmarkOptions {
  /** `--rows N`: the table size of the benchmarks that move rows (backfill, rebalance). */
  rows?: number;
}

export interface Benchmark {
  name: string;
  description: string | ((options: BenchmarkOptions) => string);
  run(options: BenchmarkOptions): Promise<void>;
}

const BENCHMARKS: Benchmark[] = [routingBenchmark, replicaReadBenchmark, scatterBenchmark, backfillBenchmark, rebalanceBenchmark, crossShardMemoryBenchmark, transactionsBenchmark, cacheBenchmark, overloadBenchmark];

const { values, positionals: wanted } = parseArgs({ options: { rows: { type: 'string' } }, allowPositionals: true });
const rows = values.rows === undefined ? undefined : Number(values.rows.replaceAll('_', ''));
if (rows !== undefined && !(Number.isSafeInteger(rows) && rows > 0)) {
  console.error(`--rows ${values.rows}: give a positive whole number of rows`);
  process.exit(2);
}
const options: BenchmarkOptions = rows === undefined ? {} : { rows };
const unknown = wanted.filter((name) => !BENCHMARKS.some((benchmark) => benchmark.name === name));
if (unknown.length > 0) {
  console.error(`unknown benchmark(s): ${unknown.join(', ')}; available: ${BENCHMARKS.map((b) => b.name).join(', ')}`);
  process.exit(2);
}
for (const benchmark of BENCHMARKS.filter((candidate) => wanted.length === 0 || wanted.includes(candidate.name))) {
  const description = typeof benchmark.description === 'function' ? benchmark.description(options) : benchmark.description;
  console.log(`\n# ${benchmark.name}: ${description}`);
  await benchmark.run(options);
}
