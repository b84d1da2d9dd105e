/**
 * A topology change as an operator asks for it (`--add NAME`, `--remove NAME`, `--weight NAME=W`)
 * applied to the ring's current shards: the shards and weights the ring will have afterwards.
 * Every problem is reported at once, each saying what to fix.
 */
import { InvalidTopologyChangeError } from '../errors.js';
import { type RingShard, ringShardIssues } from '../hashing/hash-ring.js';

export interface TopologyChange {
  add?: readonly string[];
  remove?: readonly string[];
  /** New weights by shard name; a shard being added may get its weight here (default 1). */
  weights?: Readonly<Record<string, number>>;
}

/**
 * `known`: every shard the config can connect to. A shard can only be added when the config
 * describes it (every application instance must be able to reach it before it owns keys).
 */
export function applyTopologyChange(current: readonly RingShard[], change: TopologyChange, known: readonly string[]): RingShard[] {
  const problems: string[] = [];
  const inRing = new Set(current.map((shard) => shard.name));
  const add = change.add ?? [];
  const remove = change.remove ?? [];
  const weights = change.weights ?? {};
  for (const name of add) {
    if (inRing.has(name)) problems.push(`--add ${name}: it already owns keys (change its weight with --weight instead)`);
    else if (!known.includes(name)) problems.push(`--add ${name}: no shard of that name in the config; describe it (with its connection) there first`);
  }
  for (const name of remove) {
    if (!inRing.has(name)) problems.push(`--remove ${name}: not a shard of the ring (${[...inRing].join(', ')})`);
    if (add.includes(name)) problems.push(`${name}: cannot be added and removed at once`);
  }
  for (const [name, weight] of Object.entries(weights)) {
    if (!inRing.has(name) && !add.includes(name)) problems.push(`--weight ${name}: not a shard of the ring or being added`);
    if (remove.includes(name)) problems.push(`--weight ${name}: the shard is being removed`);
    if (!(typeof weight === 'number' && Number.isFinite(weight) && weight > 0)) problems.push(`--weight ${name}=${weight}: a weight must be a number > 0`);
  }
  const next: RingShard[] = [
    ...current.filter((shard) => !remove.includes(shard.name)).map((shard) => ({ name: shard.name, weight: weights[shard.name] ?? shard.weight })),
    ...add.filter((name) => !inRing.has(name)).map((name) => ({ name, weight: weights[name] ?? 1 })),
  ];
  if (problems.length === 0) {
    if (next.length === 0) problems.push('the change would leave no shard');
    problems.push(...ringShardIssues(next).map((issue) => issue.message));
    if (sameRing(current, next)) problems.push('nothing changes: give --add, --remove or --weight with a new value');
  }
  if (problems.length > 0) throw new InvalidTopologyChangeError(problems);
  return next;
}

function sameRing(a: readonly RingShard[], b: readonly RingShard[]): boolean {
  if (a.length !== b.length) return false;
  const weights = new Map(a.map((shard) => [shard.name, shard.weight]));
  return b.every((shard) => weights.get(shard.name) === shard.weight);
}
