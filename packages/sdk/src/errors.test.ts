import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { errorFromResponse, meansSandboxGone } from './errors.js';

describe('not-running decision', () => {
  it('follows only codes the daemon chooses, not what a guest can answer', () => {
    const err = (status: number, code: string) => errorFromResponse(status, { error: { code, message: 'm' } });
    assert.equal(meansSandboxGone(err(404, 'FORKD_E_SANDBOX_NOT_FOUND')), true);
    assert.equal(meansSandboxGone(err(409, 'FORKD_E_SANDBOX_NOT_RUNNING')), true);
    assert.equal(meansSandboxGone(err(502, 'FORKD_E_AGENT_UNAVAILABLE')), true);
    // What a guest can make the daemon answer: its failures, and the allow-listed file/argument codes.
    for (const [status, code] of [[502, 'FORKD_E_AGENT_ERROR'], [404, 'FORKD_E_FILE_NOT_FOUND'], [404, 'FORKD_E_NOT_FOUND'], [400, 'FORKD_E_INVALID_ARGUMENT'], [413, 'FORKD_E_PAYLOAD_TOO_LARGE']] as const) {
      assert.equal(meansSandboxGone(err(status, code)), false, code);
    }
    assert.equal(meansSandboxGone(new Error('x')), false);
  });
});
