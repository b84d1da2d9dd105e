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
});
