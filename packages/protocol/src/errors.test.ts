import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ERROR_CODES, ForkdError, toForkdError } from './errors.js';

test('every code maps to an HTTP status and survives a JSON round trip', () => {
  for (const code of Object.keys(ERROR_CODES) as Array<keyof typeof ERROR_CODES>) {
    assert.match(code, /^FORKD_E_[A-Z_]+$/);
    const e = new ForkdError(code, 'msg', { a: 1 });
    assert.ok(e.status >= 400 && e.status < 600);
    const back = ForkdError.fromBody(JSON.parse(JSON.stringify(e)));
    assert.equal(back.code, code);
    assert.deepEqual(back.details, { a: 1 });
  }
});

test('unknown codes and foreign errors become FORKD_E_INTERNAL, ForkdErrors pass through', () => {
  assert.equal(ForkdError.fromBody({ code: 'NOPE', message: 'x' }).code, 'FORKD_E_INTERNAL');
  assert.equal(toForkdError(new Error('boom')).code, 'FORKD_E_INTERNAL');
  const fe = new ForkdError('FORKD_E_NOT_FOUND', 'x');
  assert.equal(toForkdError(fe), fe);
});
