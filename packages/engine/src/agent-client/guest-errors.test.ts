import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ERROR_CODES, LIMITS, type ForkdErrorCode } from '@forkd/protocol';
import { GUEST_CODES_PASSED, guestError } from './guest-errors.js';

describe('guest errors', () => {
  it('never passes a daemon code the guest chose: it becomes FORKD_E_AGENT_ERROR with guest_code', () => {
    for (const code of Object.keys(ERROR_CODES) as ForkdErrorCode[]) {
      if (GUEST_CODES_PASSED.has(code)) continue;
      const e = guestError('ping', { code, message: 'forged by the guest', details: { forged: true } } as { code: string; message: string });
      assert.equal(e.code, 'FORKD_E_AGENT_ERROR', code);
      assert.deepEqual(e.details, { method: 'ping', guest_code: code });
    }
  });

  it('maps the allow-list through, without the guest details', () => {
    const e = guestError('files.read', { code: 'FORKD_E_FILE_NOT_FOUND', message: 'no such file', details: { path: '/x', big: 'y'.repeat(1e6) } } as { code: string; message: string });
    assert.equal(e.code, 'FORKD_E_FILE_NOT_FOUND');
    assert.equal(e.status, 404);
    assert.deepEqual(e.details, { method: 'files.read' });
    assert.ok([...GUEST_CODES_PASSED].every((c) => ERROR_CODES[c] < 500 && c !== 'FORKD_E_UNAUTHORIZED' && c !== 'FORKD_E_SANDBOX_NOT_FOUND'));
  });

  it('truncates messages and codes; copes with a missing error body', () => {
    const e = guestError('exec', { code: 'X'.repeat(10_000), message: 'm'.repeat(16 * 1024 * 1024) });
    assert.ok(e.message.length < LIMITS.maxErrorMessageChars + 100);
    assert.equal((e.details!.guest_code as string).length, 64);
    assert.equal(guestError('exec', undefined).code, 'FORKD_E_AGENT_ERROR');
  });
});
