import { createRequire } from 'node:module';
import { expect } from 'chai';
import { localTimestampText } from '../../../lib/dialect/insert-missing.js';

const { prepareValue } = createRequire(import.meta.url)('pg/lib/utils') as { prepareValue: (value: unknown) => unknown };

// The JSON bulk insert must store a Date exactly as node-postgres would have sent it as a parameter.
describe('Date text for the PostgreSQL JSON bulk insert', () => {
  const savedZone = process.env.TZ;
  after(() => {
    if (savedZone === undefined) delete process.env.TZ;
    else process.env.TZ = savedZone;
  });

  for (const zone of ['UTC', 'America/St_Johns', 'Asia/Kathmandu', 'Pacific/Kiritimati']) {
    it(`equals node-postgres's parameter text in ${zone}`, () => {
      process.env.TZ = zone;
      const dates = ['2026-11-28T12:34:56.789Z', '1999-12-31T23:59:59.999Z', '2026-03-29T01:30:00Z', '0001-01-01T00:00:00Z', '-000044-03-15T12:00:00Z'].map(
        (text) => new Date(text),
      );
      for (const date of dates) expect(localTimestampText(date), date.toISOString()).to.equal(prepareValue(date));
    });
  }
});
