/**
 * npm run bench [-- NAME...]: runs the named benchmarks (default: all). Each prints a table of
 * ratios against a baseline measured in the same process, then one JSON line as its last line.
 * They run under tsx, which turns each TypeScript file into JavaScript once, when it loads: the
 * code measured is the library's, and migrations/*.ts load on a fresh cluster as they do in tests.
 */
import { backfillBenchmark } from './benchmarks/backfill-benchmark.js';
import { crossShardMemoryBenchmark } from './benchmarks/cross-shard-memory-benchmark.js';
import { rebalanceBenchmark } from './benchmarks/rebalance-benchmark.js';
import { replicaReadBenchmark } from './benchmarks/replica-read-benchmark.js';
import { routingBenchmark } from './benchmarks/routing-benchmark.js';
import { scatterBenchmark } from './benchmarks/scatter-benchmark.js';
import { transactionsBenchmark } from './benchmarks/transactions-benchmark.js';

export interface Benchmark {
  name: string;
  description: string;
  run(): Promise<void>;
}

const BENCHMARKS: Benchmark[] = [routingBenchmark, replicaReadBenchmark, scatterBenchmark, backfillBenchmark, rebalanceBenchmark, crossShardMemoryBenchmark, transactionsBenchmark];

const wanted = process.argv.slice(2).filter((arg) => !arg.startsWith('-'));
const unknown = wanted.filter((name) => !BENCHMARKS.some((benchmark) => benchmark.name === name));
if (unknown.length > 0) {
  console.error(`unknown benchmark(s): ${unknown.join(', ')}; available: ${BENCHMARKS.map((b) => b.name).join(', ')}`);
  process.exit(2);
}
for (const benchmark of BENCHMARKS.filter((candidate) => wanted.length === 0 || wanted.includes(candidate.name))) {
  console.log(`\n# ${benchmark.name}: ${benchmark.description}`);
  await benchmark.run();
}
