/**
 * Which node of a shard takes its writes now, and the switch from one node to another
 * (kit/primary-failover.ts decides when; this only keeps the state):
 *
 *   - while a switch is under way, writes and primary reads wait in `ready()` for it to end, up
 *     to the hold window and never past their own deadline, instead of failing;
 *   - a switch ends with a new primary (the old one is fenced: never written to again by this
 *     instance, nor read as a replica, until the configuration changes), or with none, when the
 *     old primary answers again or the window passes: the waiters go on with it and fail as it
 *     fails;
 *   - `epoch` counts the switches this instance followed, so that a call that failed knows
 *     whether the primary it failed on is still the primary.
 */
import type { NodeHandle } from '../access/open-node.js';

/** One switch under way: whoever began it, and only they, ends it. */
export interface Hold {
  readonly since: number;
  /** How long calls wait for this switch: `holdMs`, or a planned switch's own timeout. */
  readonly windowMs: number;
  readonly released: Promise<void>;
  readonly release: () => void;
}

export class ShardPrimary {
  private current: NodeHandle;
  private switches = 0;
  private answers = 0;
  private hold: Hold | undefined;
  private readonly fencedNodes = new Set<string>();
  private suspicion: ((primary: ShardPrimary, node: NodeHandle, error: unknown) => void) | undefined;

  constructor(
    readonly shard: string,
    readonly configured: NodeHandle,
    /** Replicas that may take the primary's place, in preference order. */
    readonly candidates: readonly NodeHandle[],
    private readonly holdMs: number,
  ) {
    this.current = configured;
  }

  get node(): NodeHandle {
    return this.current;
  }

  get epoch(): number {
    return this.switches;
  }

  /** Switches that ended because the primary answered as a primary again (a dropped connection, not a dead node). */
  get resumed(): number {
    return this.answers;
  }

  /** A shard with candidates can switch; one without fails over to nothing, as before. */
  get canSwitch(): boolean {
    return this.candidates.length > 0;
  }

  get switching(): boolean {
    return this.hold !== undefined;
  }

  /** Whether `hold` is the switch under way (not ended, nor replaced by another). */
  holds(hold: Hold): boolean {
    return this.hold === hold;
  }

  isFenced(node: NodeHandle): boolean {
    return this.fencedNodes.has(node.config.name);
  }

  /** Who is told when a call to the primary failed in a way a switch could explain. */
  onSuspicion(listener: (primary: ShardPrimary, node: NodeHandle, error: unknown) => void): void {
    this.suspicion = listener;
  }

  /** A call to `node`, the primary then, failed with `error`: maybe the primary is gone. */
  suspect(node: NodeHandle, error: unknown): void {
    if (this.canSwitch && node === this.current) this.suspicion?.(this, node, error);
  }

  /** The node to send a primary call to: now, or once the switch under way ends or `deadline` (performance.now()) comes. */
  async ready(deadline: number | undefined): Promise<NodeHandle> {
    const hold = this.hold;
    if (!hold) return this.current;
    const until = Math.min(hold.since + hold.windowMs, deadline ?? Number.POSITIVE_INFINITY);
    const waitMs = until - performance.now();
    if (waitMs > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([hold.released, new Promise<void>((resolve) => (timer = setTimeout(resolve, waitMs)))]);
      clearTimeout(timer);
    }
    return this.current;
  }

  /** Starts holding primary calls; undefined when a switch is already under way. */
  beginSwitch(windowMs = this.holdMs): Hold | undefined {
    if (this.hold) return undefined;
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    this.hold = { since: performance.now(), windowMs, released, release };
    return this.hold;
  }

  /**
   * `node` is the primary from now on, on connections opened from now on; the one before is
   * fenced. Held calls go to it. With `hold`, only while that switch is still the one under
   * way; without, only when none is.
   */
  switchTo(node: NodeHandle, hold?: Hold): boolean {
    if (this.hold !== hold) return false;
    if (node !== this.current) {
      this.fencedNodes.add(this.current.config.name);
      this.fencedNodes.delete(node.config.name);
      this.current = node;
      this.switches++;
      // Its sessions from its time as a replica may be read-only, or ended by its promotion.
      node.retireConnections();
    }
    this.release();
    return true;
  }

  /** `hold` ends without a new primary (`answered`: the primary said it is one): held calls go on with it. */
  endSwitch(hold: Hold, answered = false): void {
    if (this.hold !== hold) return;
    if (answered) this.answers++;
    this.release();
  }

  private release(): void {
    const hold = this.hold;
    this.hold = undefined;
    hold?.release();
  }
}

/**
 * A failure a new primary could explain: the node could not be reached, its breaker is open,
 * its connection died, or it refused a write as read-only (a replica now, or fenced).
 */
export function explainsSwitch(error: unknown, node: NodeHandle): boolean {
  const failure = error as { code?: string; stage?: string; cause?: unknown } | undefined;
  if (failure?.code === 'CONNECTION_FAILED' || failure?.code === 'SHARD_UNAVAILABLE') return true;
  if (failure?.code === 'QUERY_TIMEOUT') return failure.stage === 'connect';
  const verdict = node.dialect.classifyError(failure?.cause ?? error);
  return verdict.nodeFault || verdict.readOnly === true;
}
