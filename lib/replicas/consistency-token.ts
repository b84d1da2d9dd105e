/**
 * A consistency token: per shard, the replication position (PostgreSQL LSN, MariaDB GTID) a
 * read must see. It serialises to an opaque string (`sk1.` + base64url JSON) that can travel in
 * a cookie or a header to another service running shardkit against the same shards.
 */
import { InvalidTokenError } from '../errors.js';

const PREFIX = 'sk1.';

export class ConsistencyToken {
  readonly positions: ReadonlyMap<string, string>;

  constructor(positions: Iterable<[string, string]> = []) {
    this.positions = new Map(positions);
  }

  static parse(text: string): ConsistencyToken {
    if (typeof text !== 'string' || !text.startsWith(PREFIX)) throw new InvalidTokenError(`expected a string starting with "${PREFIX}"`);
    let decoded: unknown;
    try {
      decoded = JSON.parse(Buffer.from(text.slice(PREFIX.length), 'base64url').toString('utf8'));
    } catch {
      throw new InvalidTokenError('the payload is not base64url JSON');
    }
    if (typeof decoded !== 'object' || decoded === null || Array.isArray(decoded)) {
      throw new InvalidTokenError('the payload must map shard names to positions');
    }
    const entries = Object.entries(decoded);
    if (!entries.every(([, position]) => typeof position === 'string')) throw new InvalidTokenError('positions must be strings');
    return new ConsistencyToken(entries as [string, string][]);
  }

  /** A token given as a string or a token. */
  static from(value: string | ConsistencyToken): ConsistencyToken {
    return value instanceof ConsistencyToken ? value : ConsistencyToken.parse(value);
  }

  positionFor(shard: string): string | undefined {
    return this.positions.get(shard);
  }

  toString(): string {
    return PREFIX + Buffer.from(JSON.stringify(Object.fromEntries(this.positions))).toString('base64url');
  }
}
