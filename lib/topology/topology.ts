/**
 * The shards of a kit: the ring that places keys, and for every shard its primary and replicas,
 * each a guarded node (access/open-node.ts: its gate and its knex instance). Standby shards are
 * opened too: they own no keys but can be reached, so that a rebalance can move keys to them.
 * Opening connects nothing: a shard that is down does not stop a kit starting.
 */
import type { Knex } from 'knex';
import { type NodeHandle, type NodeOptions, openNode } from '../access/open-node.js';
import type { ShardDatabases } from '../access/shard-databases.js';
import type { ResolvedConfig } from '../config/config-types.js';
import type { DialectAdapter } from '../dialect/dialect-adapter.js';
import { ConfigError, UnknownShardError } from '../errors.js';
import { HashRing, type RingShard } from '../hashing/hash-ring.js';
import { ShardPrimary } from './shard-primary.js';

export type { NodeHandle } from '../access/open-node.js';
export { ShardPrimary } from './shard-primary.js';

export interface ShardHandle {
  readonly name: string;
  readonly weight: number;
  /** The node that takes the shard's writes now (a promoted replica after a failover). */
  readonly primary: NodeHandle;
  /** The replicas that may serve reads now: neither the primary nor a fenced old primary. */
  readonly replicas: readonly NodeHandle[];
  /** The shard's primary role and its switches (shard-primary.ts). */
  readonly failover: ShardPrimary;
}

/** A shard whose primary can change: `primary` and `replicas` follow its ShardPrimary. */
class SwitchableShard implements ShardHandle {
  constructor(
    readonly name: string,
    readonly weight: number,
    readonly failover: ShardPrimary,
    private readonly configuredReplicas: readonly NodeHandle[],
  ) {}

  get primary(): NodeHandle {
    return this.failover.node;
  }

  get replicas(): readonly NodeHandle[] {
    if (this.failover.epoch === 0) return this.configuredReplicas;
    return [this.failover.configured, ...this.configuredReplicas].filter((node) => node !== this.failover.node && !this.failover.isFenced(node));
  }
}

type OpenedNode = Awaited<ReturnType<typeof openNode>>;

export class Topology implements ShardDatabases {
  private currentRing: HashRing;
  /** Shards in configuration order. */
  readonly shards: readonly ShardHandle[];
  private readonly byName: ReadonlyMap<string, ShardHandle>;
  private readonly livePrimaries = new Map<string, Knex>();

  private constructor(
    ring: HashRing,
    shards: readonly ShardHandle[],
    private readonly opened: readonly OpenedNode[],
  ) {
    this.currentRing = ring;
    this.shards = shards;
    this.byName = new Map(shards.map((shard) => [shard.name, shard]));
  }

  static async open(config: ResolvedConfig, options: Omit<NodeOptions, 'breaker' | 'admission' | 'timeouts'>): Promise<Topology> {
    const ring = await HashRing.create(ringShardsOf(config));
    const nodes = config.shards.flatMap((shard) => [shard.primary, ...shard.replicas]);
    const nodeOptions: NodeOptions = { ...options, breaker: config.breaker, admission: config.loadShedding, timeouts: config.timeouts };
    const results = await Promise.allSettled(nodes.map((node) => openNode(node, nodeOptions)));
    const opened = results.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
    const failure = results.find((result) => result.status === 'rejected');
    if (failure) {
      await Promise.all(opened.map((node) => node.close(0)));
      throw failure.reason;
    }
    const byName = new Map(opened.map((node) => [node.config.name, node]));
    const shards = config.shards.map((shard) => {
      const primary = new ShardPrimary(
        shard.name,
        byName.get(shard.primary.name)!,
        shard.failoverCandidates.map((name) => byName.get(name)!),
        config.failover.holdMs,
      );
      return new SwitchableShard(shard.name, shard.weight, primary, shard.replicas.map((replica) => byName.get(replica.name)!));
    });
    return new Topology(ring, shards, opened);
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

  get shardNames(): string[] {
    return this.shards.map((shard) => shard.name);
  }

  /**
   * The shard's primary, for the steps of migrations and rebalances: live (livePrimary), so that
   * a step that holds it across a failover goes on with the promoted node, never the fenced one.
   */
  primary(shard: string): Knex {
    let live = this.livePrimaries.get(shard);
    if (!live) {
      live = this.livePrimary(shard);
      this.livePrimaries.set(shard, live);
    }
    return live;
  }

  /**
   * A knex instance that is always the shard's current primary's (or `view` of it), for what is
   * held for long (the control store, the decision log, ID leases, an application's
   * `kit.forShard()`): after a failover it writes to the promoted node, never to the fenced one.
   */
  livePrimary(shard: string, view: (primary: Knex) => Knex = (primary) => primary): Knex {
    const handle = this.shard(shard);
    const current = () => view(handle.primary.knex);
    // A shard that cannot switch has one primary for good.
    if (!handle.failover.canSwitch) return current();
    const bound = new WeakMap<object, Map<PropertyKey, unknown>>();
    return new Proxy(current(), {
      apply: (_target, thisArg, args) => Reflect.apply(current(), thisArg, args),
      get: (_target, property) => {
        const knex = current();
        const value = Reflect.get(knex, property);
        if (typeof value !== 'function') return value;
        // The same function for the same primary, bound to it: `db.raw === db.raw` holds.
        const functions = bound.get(knex) ?? new Map<PropertyKey, unknown>();
        bound.set(knex, functions);
        if (!functions.has(property)) functions.set(property, value.bind(knex));
        return functions.get(property);
      },
    });
  }

  dialectOf(shard: string): DialectAdapter {
    return this.shard(shard).primary.dialect;
  }

  ownerOf(key: unknown): ShardHandle {
    return this.shard(this.ring.shardFor(key));
  }

  /** What `node` is now: its shard's primary, or a replica (a promoted replica is the primary; a fenced old primary is neither). */
  roleOf(node: NodeHandle): 'primary' | 'replica' | 'fenced' {
    const { failover } = this.shard(node.config.shard);
    if (failover.node === node) return 'primary';
    return failover.isFenced(node) ? 'fenced' : 'replica';
  }

  /** Every configured node in configuration order, whatever its role now (fenced ones too). */
  nodes(): NodeHandle[] {
    return [...this.opened];
  }

  /** Calls still running get `graceMs` to finish; then every connection and socket is destroyed. */
  async close(graceMs: number): Promise<void> {
    await Promise.all(this.opened.map((node) => node.close(graceMs)));
  }
}

/** The shards that own keys, with their weights: every configured shard but the standby ones. */
export function ringShardsOf(config: ResolvedConfig): RingShard[] {
  return config.shards.filter((shard) => !shard.standby).map(({ name, weight }) => ({ name, weight }));
}
