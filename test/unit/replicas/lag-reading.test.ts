import { expect } from 'chai';
import { lagAt, readingFrom as readingFromHistory, readingSinceLastProof, readingWhilePrimaryDown } from '../../../lib/replicas/lag-reading.js';
import { PositionHistory } from '../../../lib/replicas/position-history.js';

const reached = (position: string, target: string) => Number(position) >= Number(target);
// The primary was asked at local time 1000 and answered with its clock at 50_000 and position 10.
const primary = { sentAt: 1000, clockMs: 50_000, position: '10' };
/** The primary seen at position 10 at local time 1000, and at nothing older (the heartbeat cases below). */
const onlyThisSighting = () => {
  const history = new PositionHistory(60_000);
  history.record('10', 1000);
  return history;
};
const readingFrom = (observed: typeof primary | undefined, replica: Parameters<typeof readingFromHistory>[2], measuredAt: number, compare: typeof reached) =>
  readingFromHistory(onlyThisSighting(), observed, replica, measuredAt, compare);

describe('lag readings', () => {
  it('a replica that applied the primary position is fresh as of the moment it was asked', () => {
    const reading = readingFrom(primary, { replicating: true, position: '10', heartbeatMs: 49_000 }, 1005, reached);
    expect(reading.freshAsOf).to.equal(1000);
    expect(lagAt(reading, 1005)).to.equal(5);
  });

  it('a replica behind it is bounded by its newest heartbeat, in the primary clock, without comparing host clocks', () => {
    const reading = readingFrom(primary, { replicating: true, position: '7', heartbeatMs: 49_700 }, 1005, reached);
    // The heartbeat is 300 ms older than the primary clock when asked.
    expect(reading.freshAsOf).to.equal(700);
    expect(lagAt(reading, 1005)).to.equal(305);
  });

  it('ages: the same reading counts as further behind as time passes', () => {
    const reading = readingFrom(primary, { replicating: true, position: '7', heartbeatMs: 49_900 }, 1000, reached);
    expect(lagAt(reading, 1000)).to.equal(100);
    expect(lagAt(reading, 1200)).to.equal(300);
  });

  it('is unknown when replication stopped, no heartbeat arrived, or the primary could not be read', () => {
    const stopped = readingFrom(primary, { replicating: false, position: '10', heartbeatMs: 50_000, problem: 'SQL thread stopped' }, 1000, reached);
    expect(stopped.freshAsOf).to.equal(undefined);
    expect(stopped.problem).to.equal('SQL thread stopped');
    expect(readingFrom(primary, { replicating: true, position: '7', heartbeatMs: undefined }, 1000, reached).freshAsOf).to.equal(undefined);
    expect(readingFrom(undefined, { replicating: true, position: '10', heartbeatMs: 1 }, 1000, reached).freshAsOf).to.equal(undefined);
    expect(lagAt(stopped, 1000)).to.equal(undefined);
  });
});

describe('lag readings from the primary positions seen', () => {
  it('a replica is fresh as of the last sighting of the newest position it has applied', () => {
    const history = new PositionHistory(60_000);
    history.record('5', 100);
    history.record('5', 175);
    history.record('8', 250);
    history.record('10', 325);
    history.record('10', 400);
    const at = (position: string) => readingFromHistory(history, { ...primary, sentAt: 400 }, { replicating: true, position, heartbeatMs: undefined }, 410, reached).freshAsOf;
    expect(at('10')).to.equal(400);
    expect(at('9')).to.equal(250);
    expect(at('6')).to.equal(175);
    expect(at('4'), 'behind every sighting, without a heartbeat').to.equal(undefined);
  });

  it('forgets runs older than its window, keeping the newest, and never moves a sighting back', () => {
    const history = new PositionHistory(1000);
    history.record('1', 0);
    history.record('2', 700);
    history.record('3', 1600);
    expect(history.freshAsOf('1', reached)).to.equal(undefined);
    expect(history.freshAsOf('2', reached)).to.equal(700);
    history.record('3', 1500);
    expect(history.newest).to.deep.equal({ position: '3', lastSeenAt: 1600 });
    history.record('4', 10_000);
    expect(history.newest?.position).to.equal('4');
    expect(history.freshAsOf('3', reached)).to.equal(undefined);
  });
});

describe('lag readings while the primary is down', () => {
  const fresh = readingFrom(primary, { replicating: true, position: '10', heartbeatMs: 49_000 }, 1005, reached);
  const stopped = { replicating: false, position: '10', heartbeatMs: 50_000, problem: 'the WAL receiver is not streaming' };

  it('freezes the lag at the moment the primary was found down: nothing can commit after it', () => {
    const reading = readingWhilePrimaryDown(fresh, stopped, 3000, 1250);
    expect(lagAt(reading, 3000)).to.equal(250);
    expect(lagAt(reading, 60_000)).to.equal(250);
  });

  it('counts the lag from the last proof, still ageing, while the primary cannot be observed without proof that it is down', () => {
    const reading = readingSinceLastProof(fresh, stopped, 1500);
    expect(lagAt(reading, 1500)).to.equal(lagAt(fresh, 1500));
    expect(lagAt(reading, 5000)! - lagAt(reading, 1500)!).to.equal(3500);
    expect(readingSinceLastProof(undefined, stopped, 1500).freshAsOf).to.equal(undefined);
  });

  it('keeps the earliest moment across probes, and stays unknown without an earlier proof', () => {
    const first = readingWhilePrimaryDown(fresh, stopped, 1500, 1250);
    const later = readingWhilePrimaryDown(first, stopped, 2500, 2250);
    expect(lagAt(later, 5000)).to.equal(250);
    expect(readingWhilePrimaryDown(undefined, stopped, 1500, 1250).freshAsOf).to.equal(undefined);
  });
});
