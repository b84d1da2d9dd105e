/**
 * A fake of the engine's one access to databases (ShardAccess) that records every request: the
 * shard, intent, method and compiled SQL, and answers from a script per shard. With it, the
 * engine's partial failures, aborts, merges and per-shard rewrites are unit tests with the
 * expected per-shard SQL, no database needed (as Vitess's engine tests fake their cursor).
 */
import type { ShardAccess, ShardRequest, TransactOutcome } from '../../lib/engine/shard-access.js';
import type { ShardKitError } from '../../lib/errors.js';
import type { AnyQueryBuilder } from '../../lib/knex/builder-internals.js';

export interface RecordedCall {
  shard: string;
  intent: ShardRequest['intent'];
  method: string;
  /** One statement per query; several for a transaction. */
  sql: string[];
  transaction: boolean;
}

/** What a shard answers: rows or a count, an error, or a COMMIT whose outcome is lost. */
export type ShardScript =
  | { result: unknown; delayMs?: number }
  | { error: ShardKitError; delayMs?: number }
  | { commitLost: ShardKitError; delayMs?: number };

export class RecordingAccess implements ShardAccess {
  readonly calls: RecordedCall[] = [];

  constructor(private readonly script: (shard: string, query: AnyQueryBuilder) => ShardScript) {}

  async run(shard: string, request: ShardRequest, query: AnyQueryBuilder): Promise<unknown> {
    this.record(shard, request, [query], false);
    const answer = this.script(shard, query);
    await pause(answer.delayMs);
    if ('error' in answer) throw answer.error;
    if ('commitLost' in answer) throw answer.commitLost;
    return answer.result;
  }

  async transact(shard: string, request: ShardRequest, queries: readonly AnyQueryBuilder[]): Promise<TransactOutcome> {
    this.record(shard, request, queries, true);
    const answers = queries.map((query) => this.script(shard, query));
    await pause(Math.max(0, ...answers.map((answer) => answer.delayMs ?? 0)));
    const failed = answers.find((answer) => 'error' in answer);
    if (failed && 'error' in failed) return { committed: false, error: failed.error };
    const lost = answers.find((answer) => 'commitLost' in answer);
    if (lost && 'commitLost' in lost) return { committed: 'unknown', error: lost.commitLost };
    return { committed: true, results: answers.map((answer) => ('result' in answer ? answer.result : undefined)) };
  }

  async *stream(shard: string, request: ShardRequest, query: AnyQueryBuilder): AsyncGenerator<Record<string, unknown>> {
    const rows = await this.run(shard, request, query);
    for (const row of rows as Record<string, unknown>[]) yield row;
  }

  /** Shards in the order the engine asked them, for one kind of call. */
  shardsAsked(transaction?: boolean): string[] {
    return this.calls.filter((call) => transaction === undefined || call.transaction === transaction).map((call) => call.shard);
  }

  private record(shard: string, request: ShardRequest, queries: readonly AnyQueryBuilder[], transaction: boolean): void {
    this.calls.push({ shard, intent: request.intent, method: request.method, sql: queries.map((query) => query.toSQL().sql), transaction });
  }
}

function pause(ms: number | undefined): Promise<void> {
  return ms ? new Promise((resolve) => setTimeout(resolve, ms)) : Promise.resolve();
}
