/**
 * A select of several shard keys answered key by key from the read cache (cached-reads.ts
 * keyReadsOf): each key's rows are their own entry, so a write of one key ends only that key's
 * entry and lists that overlap share entries. The keys that miss are read together, one
 * statement for the misses of a turn of the event loop, and split by key; each key's rows are
 * then stored under read-cache.ts's fill checks, like any other fill.
 *
 * A row whose key is none of those asked for cannot be placed; it would be lost from the
 * answer, so the whole select is answered uncached instead (undefined).
 */
import type { CacheOutcome, ReadCache } from '../cache/read-cache.js';
import type { KeyReads } from './cached-reads.js';

type Row = Record<string, unknown>;

export interface PerKeyParts {
  cache: ReadCache;
  /** Reads the rows of these keys from the primaries, in one select. */
  readKeys(values: unknown[]): Promise<Row[]>;
  identityOf(value: unknown): string;
  positionsBefore(shards: readonly string[]): ReadonlyMap<string, string>;
  outcome(what: CacheOutcome): void;
}

/** Why a batch's rows were not split: answered uncached. */
class UnplacedRow extends Error {}

export async function answerPerKey(keyReads: KeyReads, parts: PerKeyParts): Promise<Row[] | undefined> {
  const batch = new KeyBatch(keyReads.shardKey, parts);
  try {
    const perKey = await Promise.all(
      keyReads.reads.map(({ read, value, identity, shard }) =>
        parts.cache.answer(read, () => ({ read: () => batch.load(identity, value), positions: parts.positionsBefore([shard]) }), parts.outcome),
      ),
    );
    return (perKey as Row[][]).flat();
  } catch (error) {
    if (error instanceof UnplacedRow) return undefined;
    throw error;
  }
}

interface Waiting {
  value: unknown;
  rows: Promise<Row[]>;
  resolve(rows: Row[]): void;
  reject(error: unknown): void;
}

/** Loads asked for in one turn of the event loop are read in one select. */
class KeyBatch {
  private waiting = new Map<string, Waiting>();

  constructor(
    private readonly shardKey: string,
    private readonly parts: PerKeyParts,
  ) {}

  /** The rows of one key; a key asked twice in one turn is read once. */
  load(identity: string, value: unknown): Promise<Row[]> {
    const asked = this.waiting.get(identity);
    if (asked) return asked.rows;
    // setImmediate, not a microtask: loads that follow Redis answers of the same socket read still join.
    if (this.waiting.size === 0) setImmediate(() => void this.flush());
    let settle!: Pick<Waiting, 'resolve' | 'reject'>;
    const rows = new Promise<Row[]>((resolve, reject) => {
      settle = { resolve, reject };
    });
    this.waiting.set(identity, { value, rows, ...settle });
    return rows;
  }

  private async flush(): Promise<void> {
    const waiting = this.waiting;
    this.waiting = new Map();
    try {
      const rows = await this.parts.readKeys([...waiting.values()].map((entry) => entry.value));
      const byKey = new Map<string, Row[]>([...waiting.keys()].map((identity) => [identity, []]));
      const byKeyOf = (row: Row): Row[] => {
        let identity: string | undefined;
        try {
          identity = this.parts.identityOf(row[this.shardKey]);
        } catch {
          // A key value routing refuses (none should come back): the row cannot be placed either.
        }
        const own = identity === undefined ? undefined : byKey.get(identity);
        if (!own) throw new UnplacedRow();
        return own;
      };
      for (const row of rows) byKeyOf(row).push(row);
      for (const [identity, entry] of waiting) entry.resolve(byKey.get(identity)!);
    } catch (error) {
      for (const entry of waiting.values()) entry.reject(error);
    }
  }
}
