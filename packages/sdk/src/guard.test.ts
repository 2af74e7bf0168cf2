import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ForkdError } from '@forkd/protocol';
import { guard, toSdkError } from './guard.js';
import { ForkdSdkError, InternalError, NotFoundError, UnavailableError } from './errors.js';

test('toSdkError keeps SDK errors, types protocol errors by code, and codes everything else', () => {
  const nf = new NotFoundError('FORKD_E_SANDBOX_NOT_FOUND', 'x');
  assert.equal(toSdkError(nf), nf);
  const fromProtocol = toSdkError(new ForkdError('FORKD_E_FILE_NOT_FOUND', 'gone', { path: '/x' }));
  assert.ok(fromProtocol instanceof NotFoundError);
  assert.deepEqual([fromProtocol.code, fromProtocol.details], ['FORKD_E_FILE_NOT_FOUND', { path: '/x' }]);
  const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
  assert.ok(toSdkError(reset) instanceof UnavailableError);
  assert.equal(toSdkError(new Error('aborted')).code, 'FORKD_E_UNAVAILABLE');
  assert.equal(toSdkError(new SyntaxError('Unexpected token')).code, 'FORKD_E_INTERNAL');
  assert.ok(toSdkError('a string') instanceof InternalError);
});

test('guard rethrows typed', async () => {
  await assert.rejects(guard(async () => { throw new TypeError('bad'); }), (e: ForkdSdkError) => e instanceof ForkdSdkError && e.code === 'FORKD_E_INTERNAL');
  assert.equal(await guard(async () => 5), 5);
});
