/**
 * The shards of a kit: the ring that places keys, and for every shard its primary and replicas,
 * each with its own knex instance (standby shards too: they own no keys but can be reached, so
 * that a rebalance can move keys to them). Opening it creates the knex instances (drivers load here,
 * per dialect in use) but connects nothing: a shard that is down does not stop a kit starting.
 */
import type { Knex } from 'knex';
import type { ResolvedConfig, ResolvedNode } from '../config/config-types.js';
import type { DialectAdapter } from '../dialect/dialect-adapter.js';
import { dialectAdapter } from '../dialect/dialects.js';
import { ConfigError, UnknownShardError } from '../errors.js';
import { HashRing, type RingShard } from '../hashing/hash-ring.js';

export interface NodeHandle {
  readonly config: ResolvedNode;
  readonly knex: Knex;
  readonly dialect: DialectAdapter;
}

export interface ShardHandle {
  readonly name: string;
  readonly weight: number;
  readonly primary: NodeHandle;
  readonly replicas: readonly NodeHandle[];
}

export class Topology {
  private currentRing: HashRing;
  /** Shards in configuration order. */
  readonly shards: readonly ShardHandle[];
  private readonly byName: ReadonlyMap<string, ShardHandle>;

  private constructor(ring: HashRing, shards: readonly ShardHandle[]) {
    this.currentRing = ring;
    this.shards = shards;
    this.byName = new Map(shards.map((shard) => [shard.name, shard]));
  }

  static async open(config: ResolvedConfig): Promise<Topology> {
    const ring = await HashRing.create(ringShardsOf(config));
    const nodes = config.shards.flatMap((shard) => [shard.primary, ...shard.replicas]);
    const opened = await Promise.allSettled(nodes.map(openNode));
    const handles = new Map<string, NodeHandle>();
    for (const result of opened) if (result.status === 'fulfilled') handles.set(result.value.config.name, result.value);
    const failure = opened.find((result) => result.status === 'rejected');
    if (failure) {
      await Promise.all([...handles.values()].map((node) => node.knex.destroy()));
      throw failure.reason;
    }
    const shards = config.shards.map((shard) => ({
      name: shard.name,
      weight: shard.weight,
      primary: handles.get(shard.primary.name)!,
      replicas: shard.replicas.map((replica) => handles.get(replica.name)!),
    }));
    return new Topology(ring, shards);
  }

  /** The ring that places keys now: the config's, or the one a rebalance switched to. */
  get ring(): HashRing {
    return this.currentRing;
  }

  /** Places keys with `ring` from now on; every shard it names must be one of this topology's. */
  useRing(ring: HashRing): void {
    const unknown = ring.shardNames.filter((name) => !this.byName.has(name));
    if (unknown.length > 0) {
      throw new ConfigError(unknown.map((name) => ({ path: 'shards', message: `the topology in the control table names shard "${name}", which this config does not describe: add it` })));
    }
    this.currentRing = ring;
  }

  shard(name: string): ShardHandle {
    const shard = this.byName.get(name);
    if (!shard) throw new UnknownShardError(name, [...this.byName.keys()]);
    return shard;
  }

  ownerOf(key: unknown): ShardHandle {
    return this.shard(this.ring.shardFor(key));
  }

  nodes(): NodeHandle[] {
    return this.shards.flatMap((shard) => [shard.primary, ...shard.replicas]);
  }

  async close(): Promise<void> {
    await Promise.all(this.nodes().map((node) => node.knex.destroy()));
  }
}

async function openNode(config: ResolvedNode): Promise<NodeHandle> {
  const dialect = dialectAdapter(config.dialect);
  return { config, dialect, knex: await dialect.createKnex(config) };
}

/** The shards that own keys, with their weights: every configured shard but the standby ones. */
export function ringShardsOf(config: ResolvedConfig): RingShard[] {
  return config.shards.filter((shard) => !shard.standby).map(({ name, weight }) => ({ name, weight }));
}
