import { expect } from 'chai';
import { overloadResponse, retryAfterOf } from '../../../lib/resilience/retry-after.js';
import { QueryFailedError, ScatterError, ShardOverloadedError, ShardUnavailableError, UnsupportedQueryError } from '../../../lib/errors.js';

describe('Retry-After from shardkit errors', () => {
  const shed = new ShardOverloadedError('s1', 's1-primary', 'normal', 1500);
  const down = new ShardUnavailableError('s2', 's2-primary', 4200);

  it('maps a shed or unavailable node to 503 with the wait in whole seconds', () => {
    expect(overloadResponse(shed)).to.deep.equal({ status: 503, headers: { 'Retry-After': '2' } });
    expect(overloadResponse(down)).to.deep.equal({ status: 503, headers: { 'Retry-After': '5' } });
    expect(overloadResponse(new ShardOverloadedError('s1', 's1-primary', 'normal', 10))?.headers['Retry-After']).to.equal('1');
  });

  it("gives a scatter the longest wait of its shards, and none when a shard's failure names no wait", () => {
    expect(retryAfterOf(new ScatterError([{ shard: 's1', error: shed }, { shard: 's2', error: down }], ['s3']))).to.equal(4200);
    expect(retryAfterOf(new ScatterError([{ shard: 's1', error: shed }, { shard: 's2', error: new QueryFailedError('timed out', { retryable: true }) }], []))).to.equal(undefined);
  });

  it('says nothing for errors a retry cannot mend, or that are not shardkit errors', () => {
    expect(overloadResponse(new UnsupportedQueryError('join', 'no'))).to.equal(undefined);
    expect(overloadResponse(new Error('plain'))).to.equal(undefined);
    expect(overloadResponse(undefined)).to.equal(undefined);
  });
});
