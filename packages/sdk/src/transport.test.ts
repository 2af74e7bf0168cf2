import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveEndpoint } from './transport.js';

const token = 't'.repeat(32);

test('a token is not sent over plain http to a host that is not loopback unless allowed', () => {
  const saved = process.env.FORKD_ALLOW_INSECURE;
  delete process.env.FORKD_ALLOW_INSECURE;
  try {
    assert.throws(() => resolveEndpoint({ url: 'http://10.0.0.5:8889', token }), (e: Error & { code?: string }) => e.code === 'FORKD_E_INVALID_ARGUMENT' && /cleartext/.test(e.message));
    assert.throws(() => resolveEndpoint({ url: 'http://forkd.example.org', token }), /cleartext/);
    assert.equal(resolveEndpoint({ url: 'http://10.0.0.5:8889', token, allowInsecure: true }).token, token);
    process.env.FORKD_ALLOW_INSECURE = '1';
    assert.equal(resolveEndpoint({ url: 'http://10.0.0.5:8889', token }).token, token);
    delete process.env.FORKD_ALLOW_INSECURE;
    for (const url of ['https://10.0.0.5:8889', 'http://127.0.0.1:8889', 'http://localhost:1', 'http://[::1]:1']) {
      assert.equal(resolveEndpoint({ url, token }).token, token, url);
    }
    assert.equal(resolveEndpoint({ url: 'http://10.0.0.5:8889', token: '' }).token, undefined, 'no token: nothing to leak');
  } finally {
    if (saved === undefined) delete process.env.FORKD_ALLOW_INSECURE;
    else process.env.FORKD_ALLOW_INSECURE = saved;
  }
});
