import { expect } from 'chai';
import { Admission, type Ticket } from '../../../lib/resilience/admission.js';
import { ShardOverloadedError } from '../../../lib/errors.js';

describe('admission of one node', () => {
  const later = () => performance.now() + 5000;

  it('never sheds critical work: past a full queue of critical waiters it queues anyway, and is served in turn', async () => {
    const admission = new Admission({ shard: 's1', node: 's1-primary' }, { maxInFlight: 1, maxQueued: 2 });
    const running = await admission.admit('normal', later());
    const critical = [1, 2, 3, 4].map(() => admission.admit('critical', later()));
    const normal = await admission.admit('normal', later()).catch((error: unknown) => error);
    expect(normal).to.be.instanceOf(ShardOverloadedError);
    expect(admission.queued).to.equal(4);
    running.release();
    const served: Ticket[] = [];
    for (const waiting of critical) {
      const ticket = await waiting;
      served.push(ticket);
      ticket.release();
    }
    expect(served).to.have.length(4);
    expect(admission.admitted).to.equal(0);
  });

  it('sheds a background waiter to make room for a critical call', async () => {
    const admission = new Admission({ shard: 's1', node: 's1-primary' }, { maxInFlight: 1, maxQueued: 2 });
    const running = await admission.admit('normal', later());
    const background = admission.admit('background', later()).catch((error: unknown) => error);
    const queuedNormal = admission.admit('normal', later());
    const critical = admission.admit('critical', later());
    expect(await background).to.be.instanceOf(ShardOverloadedError);
    running.release();
    (await critical).release();
    (await queuedNormal).release();
    expect(admission.admitted).to.equal(0);
  });

  it('sheds at once a call the queue would keep past its deadline, once hold times are known, with that wait as retryAfterMs', async () => {
    const admission = new Admission({ shard: 's1', node: 's1-primary' }, { maxInFlight: 1, maxQueued: 10 });
    const running = await admission.admit('normal', later());
    // Before enough hold times are known, nothing is predicted: a short deadline still queues.
    const early = admission.admit('normal', performance.now() + 30).catch((error: unknown) => error);
    expect(admission.queued).to.equal(1);
    expect((await early as Error).name).to.equal('QueryTimeoutError');
    for (let call = 0; call < 20; call++) admission.observeHoldMs(200);
    const started = performance.now();
    const shed = await admission.admit('normal', performance.now() + 100).catch((error: unknown) => error);
    expect(performance.now() - started).to.be.below(20);
    expect(shed).to.be.instanceOf(ShardOverloadedError);
    expect((shed as ShardOverloadedError).retryAfterMs).to.be.within(100, 200);
    // Room enough before the deadline: it waits; critical waits whatever its deadline.
    const patient = admission.admit('normal', later());
    const critical = admission.admit('critical', performance.now() + 100).catch((error: unknown) => error);
    expect(admission.queued).to.equal(2);
    expect((await critical as Error).name).to.equal('QueryTimeoutError');
    running.release();
    (await patient).release();
    expect(admission.admitted).to.equal(0);
  });
});
