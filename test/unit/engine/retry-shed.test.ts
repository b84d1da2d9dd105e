import { expect } from 'chai';
import { retryShed } from '../../../lib/engine/retry-shed.js';
import { QueryCancelledError, ShardOverloadedError, ShardUnavailableError } from '../../../lib/errors.js';

const shed = (retryAfterMs: number) => new ShardOverloadedError('s1', 's1-primary', 'normal', retryAfterMs);

describe('a shed scatter read asked again (retry-shed)', () => {
  it('asks again after the estimate until the node admits it', async () => {
    let attempts = 0;
    const started = performance.now();
    const answer = await retryShed(async () => {
      attempts++;
      if (attempts < 3) throw shed(20);
      return 'rows';
    }, performance.now() + 5000);
    expect(answer).to.equal('rows');
    expect(attempts).to.equal(3);
    // Two waits of 20 ms (or the backoff) x 0.5..1.5.
    expect(performance.now() - started).to.be.at.least(19);
  });

  it('fails with the shed at once when the wait would pass the deadline, and never retries other errors', async () => {
    let attempts = 0;
    const started = performance.now();
    const tooLate = await retryShed(async () => {
      attempts++;
      throw shed(1000);
    }, performance.now() + 100).catch((error: unknown) => error);
    expect(tooLate).to.be.instanceOf(ShardOverloadedError);
    expect(attempts).to.equal(1);
    expect(performance.now() - started).to.be.below(50);

    let others = 0;
    const down = await retryShed(async () => {
      others++;
      throw new ShardUnavailableError('s1', 's1-primary', 1000);
    }, performance.now() + 5000).catch((error: unknown) => error);
    expect(down).to.be.instanceOf(ShardUnavailableError);
    expect(others).to.equal(1);
  });

  it('stops waiting when the call is cancelled, and gives up after a bounded number of retries', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 20);
    const cancelled = await retryShed(async () => Promise.reject(shed(5000)), performance.now() + 60_000, controller.signal).catch((error: unknown) => error);
    expect(cancelled).to.be.instanceOf(QueryCancelledError);

    let attempts = 0;
    const exhausted = await retryShed(async () => {
      attempts++;
      throw shed(1);
    }, performance.now() + 60_000).catch((error: unknown) => error);
    expect(exhausted).to.be.instanceOf(ShardOverloadedError);
    expect(attempts).to.equal(9);
  });
});
