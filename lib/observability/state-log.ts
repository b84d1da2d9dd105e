/**
 * Structured logs of a kit's state changes, for pino or any logger of the same shape:
 *
 *   logStateChanges(kit, pino());
 *
 * Changes only (a breaker opened or closed, a replica excluded or readmitted with its lag, an
 * online-migration phase applied, a backfill throttled or resumed, the degradation level
 * raised or lowered), never a line per query.
 * Every string that reaches the logger passes through the secret redactor first.
 */
import type { ShardKit } from '../shard-kit.js';
import { redactSecrets } from '../security/secret-redactor.js';
import type { BreakerEvent, DegradationEvent, PhaseEvent, ReplicaEvent, ThrottleEvent } from './state-events.js';

/** pino's calling convention: fields first, then the message. */
export interface StateLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

export function logStateChanges(kit: ShardKit, logger: StateLogger): () => void {
  const log = (level: 'info' | 'warn', fields: Record<string, unknown>, message: string) =>
    logger[level](Object.fromEntries(Object.entries(fields).map(([field, value]) => [field, typeof value === 'string' ? redactSecrets(value) : value])), message);
  const onBreaker = (event: BreakerEvent) =>
    log(event.state === 'open' ? 'warn' : 'info', { ...event }, { open: 'breaker opened', 'half-open': 'breaker half-open: trying one call', closed: 'breaker closed' }[event.state]);
  const onReplica = (event: ReplicaEvent) =>
    log(event.fresh ? 'info' : 'warn', { ...event }, event.fresh ? 'replica readmitted for reads' : 'replica excluded from reads');
  const onPhase = (event: PhaseEvent) => log('info', { ...event }, 'online migration phase applied');
  const onThrottle = (event: ThrottleEvent) => log('info', { ...event }, event.reason ? 'backfill throttled' : 'backfill throttling stopped');
  const onDegradation = (event: DegradationEvent) =>
    log(event.to > event.from ? 'warn' : 'info', { ...event }, event.to > event.from ? 'degradation level raised' : event.to < event.from ? 'degradation level lowered' : `degradation level now set by the ${event.source}`);
  kit.on('breaker', onBreaker);
  kit.on('degradation', onDegradation);
  kit.on('replica', onReplica);
  kit.on('phase', onPhase);
  kit.on('throttle', onThrottle);
  return () => {
    kit.off('breaker', onBreaker);
    kit.off('degradation', onDegradation);
    kit.off('replica', onReplica);
    kit.off('phase', onPhase);
    kit.off('throttle', onThrottle);
  };
}
