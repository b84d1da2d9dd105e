import { expect } from 'chai';
import { redactSecrets, registerSecret } from '../../../lib/security/secret-redactor.js';

describe('secret redaction', () => {
  it('masks the password of any connection URL, registered or not', () => {
    expect(redactSecrets('connect postgres://app:never-seen@db:5432/x failed')).to.equal('connect postgres://app:***@db:5432/x failed');
    expect(redactSecrets('mysql://root:pw@h/db')).to.equal('mysql://root:***@h/db');
  });

  it('masks registered secrets wherever they appear', () => {
    registerSecret('hunter2-registered');
    expect(redactSecrets('password "hunter2-registered" rejected; hunter2-registered')).to.equal('password "***" rejected; ***');
  });

  it('leaves text without secrets alone, and ignores secrets too short to mask safely', () => {
    registerSecret('ab');
    expect(redactSecrets('about a table')).to.equal('about a table');
  });
});
