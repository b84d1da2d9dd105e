/**
 * One application instance's view of a rebalance, read from the control table by its migration
 * coordinator: which ring places keys (the old one until cutover, the new one from cutover on),
 * the moving tables and how their writes are synced, whether writes pause for a topology switch,
 * and which marked rows multi-shard statements must exclude.
 */
import type { ResolvedConfig } from '../config/config-types.js';
import type { KeyTypes } from '../engine/key-types.js';
import { HashRing, type RingShard } from '../hashing/hash-ring.js';
import type { MigrationRecord } from '../migrations/online/control-store.js';
import type { Involvement } from '../migrations/online/dual-write.js';
import type { MigrationTables } from '../migrations/online/migration-tables.js';
import { type Phase, targetWritable } from '../migrations/online/phases.js';
import { ringShardsOf, type Topology } from '../topology/topology.js';
import type { MarkerDirection } from './move-markers.js';
import { movingTable } from './moving-table.js';
import { REBALANCE_NAME, type RebalanceState, rebalanceOf } from './rebalance-record.js';


interface Move {
  phase: Phase;
  state: RebalanceState;
  switching: boolean;
  tables: Map<string, MigrationTables>;
}

/** How long applying a record may spend learning the moving tables' key column types. */
const KEY_TYPE_LOOKUP_MS = 2000;

export class RebalanceFollower {
  readonly name = REBALANCE_NAME;
  private move: Move | undefined;
  private readonly rings = new Map<string, Promise<HashRing>>();

  constructor(
    private readonly topology: Topology,
    private readonly config: ResolvedConfig,
    private readonly keyTypes: KeyTypes,
  ) {}

  /** Applies the record: the ring that places keys, and the moving tables. */
  async apply(record: MigrationRecord | undefined): Promise<void> {
    const state = rebalanceOf(record);
    if (!record || !state) {
      this.move = undefined;
      this.topology.useRing(await this.ring(ringShardsOf(this.config)));
      return;
    }
    const [from, to] = await Promise.all([this.ring(state.from), this.ring(state.to)]);
    // The new placement serves from cutover on, as an online migration's target does.
    const serving = targetWritable(record.phase) ? to : from;
    this.topology.useRing(serving);
    // Until cleanup (or the cleanup of a rollback) has removed every second copy, rows stay marked.
    const tables = new Map<string, MigrationTables>();
    if (!state.cleaned) {
      for (const [table, key] of Object.entries(state.keys)) {
        const options = this.config.tables.get(table);
        if (options) tables.set(table, movingTable({ table, shardKey: options.shardKey, slotColumn: options.slotColumn, keyTypes: this.keyTypes, key, from, to, databases: this.topology }));
      }
    }
    // Keys are placed by their canonical form (char(n) without padding, say) once the column's type is known.
    await Promise.all([...tables.keys()].map((table) => this.keyTypes.learn(table, performance.now() + KEY_TYPE_LOOKUP_MS).catch(() => undefined)));
    this.move = { phase: record.phase, state, switching: record.state.switching === true, tables };
  }

  /** The moving table's part in writes: before cutover written at the old owner and copied forward, during cutover the reverse. */
  involvement(table: string): Involvement | undefined {
    const tables = this.move?.tables.get(table);
    const phase = this.move?.phase;
    if (!tables || !phase || phase === 'pending' || phase === 'cleanup') return undefined;
    return { tables, side: phase === 'cutover' ? 'target' : 'source', phase };
  }

  /** Writes to a moving table wait while the topology switches, so that no two instances write one row at two owners. */
  writesPaused(table: string): boolean {
    return this.move?.switching === true && this.move.tables.has(table);
  }

  /** Which marked rows a multi-shard statement on `table` must exclude now, if any. */
  hiddenRows(table: string): MarkerDirection | undefined {
    const move = this.move;
    if (!move?.tables.has(table)) return undefined;
    return targetWritable(move.phase) ? 'out' : 'in';
  }

  /** The rebalance this instance applies, if one has been recorded. */
  get applied(): { phase: Phase; switching: boolean; cleaned: boolean } | undefined {
    const move = this.move;
    return move && { phase: move.phase, switching: move.switching, cleaned: move.state.cleaned === true };
  }

  /** Tables moving now, for the runner. */
  movingTables(): MigrationTables[] {
    return [...(this.move?.tables.values() ?? [])];
  }

  private ring(shards: readonly RingShard[]): Promise<HashRing> {
    const id = JSON.stringify(shards);
    let ring = this.rings.get(id);
    if (!ring) {
      ring = HashRing.create(shards);
      this.rings.set(id, ring);
    }
    return ring;
  }
}
