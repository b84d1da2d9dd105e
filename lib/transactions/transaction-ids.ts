/**
 * Ids of cross-shard transactions and their participants. The transaction's id (gtrid) carries
 * the coordinator's deadline, so that recovery can tell a transaction still being decided from
 * one whose coordinator is gone without asking it; each participant's id adds its ordinal (two
 * shards may be databases of one server, where prepared ids must differ):
 *
 *   sk1-<deadline ms, base 36>-<16 random hex>          the transaction (gtrid)
 *   sk1-<deadline ms, base 36>-<16 random hex>-<n>      participant n (0-based)
 */
import { randomBytes } from 'node:crypto';

const PARTICIPANT = /^(sk1-([0-9a-z]+)-[0-9a-f]{16})-(\d{1,3})$/;

export interface ParticipantId {
  gtrid: string;
  index: number;
  /** The coordinator's deadline (ms since the epoch, its clock). */
  deadlineMs: number;
}

export function newTransactionId(deadlineMs: number): string {
  return `sk1-${Math.ceil(deadlineMs).toString(36)}-${randomBytes(8).toString('hex')}`;
}

export function participantId(gtrid: string, index: number): string {
  return `${gtrid}-${index}`;
}

/** The coordinator's deadline a transaction id carries (ms since the epoch); undefined if not one of ours. */
export function deadlineOf(gtrid: string): number | undefined {
  return parseParticipantId(`${gtrid}-0`)?.deadlineMs;
}

/** The parts of a participant id shardkit made; undefined for any other prepared transaction. */
export function parseParticipantId(gid: string): ParticipantId | undefined {
  const match = PARTICIPANT.exec(gid);
  if (!match) return undefined;
  return { gtrid: match[1]!, index: Number(match[3]), deadlineMs: Number.parseInt(match[2]!, 36) };
}
