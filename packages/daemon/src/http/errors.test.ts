import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ForkdError, LIMITS } from '@forkd/protocol';
import { errorLogFields } from './errors.js';

describe('error logging', () => {
  it('logs daemon 5xx with a cut message, never a guest failure or a 4xx', () => {
    assert.equal(errorLogFields(new ForkdError('FORKD_E_AGENT_ERROR', 'guest text', { method: 'exec', guest_code: 'FORKD_E_INTERNAL' })), null);
    assert.equal(errorLogFields(new ForkdError('FORKD_E_FILE_NOT_FOUND', 'no such file')), null);
    const f = errorLogFields(new ForkdError('FORKD_E_INTERNAL', 'x'.repeat(100_000), { secret: 'details are not logged' }))!;
    assert.equal(f.code, 'FORKD_E_INTERNAL');
    assert.ok(f.msg.length < LIMITS.maxErrorMessageChars + 32);
    assert.deepEqual(Object.keys(f).sort(), ['code', 'msg']);
  });
});
