/** The Sandbox against a daemon that requires a bearer token, over TCP. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestDaemon, type TestDaemon } from '@forkd/daemon/testing';
import { Sandbox, AuthenticationError } from './index.js';

let d: TestDaemon;
before(async () => {
  d = await startTestDaemon({ tcp: true, token: true });
});
after(async () => {
  await d?.stop();
});

test('missing or wrong token: AuthenticationError FORKD_E_UNAUTHORIZED; right token works', async () => {
  assert.ok(d.url && d.token);
  const isAuth = (e: unknown) => e instanceof AuthenticationError && e.code === 'FORKD_E_UNAUTHORIZED';
  // token '' overrides any FORKD_TOKEN in the environment: no Authorization header at all.
  await assert.rejects(Sandbox.list({ url: d.url, token: '' }).toArray(), isAuth);
  await assert.rejects(Sandbox.list({ url: d.url, token: `${d.token}x` }).toArray(), isAuth);
  await assert.rejects(Sandbox.create(d.tag, { url: d.url, token: 'wrong-token-of-enough-length' }), isAuth);
  await assert.rejects(Sandbox.connect('sb-0000000000000000', { url: d.url, token: '' }), isAuth, 'auth is checked before the id is looked up');
  assert.deepEqual(await Sandbox.list({ url: d.url, token: d.token }).toArray(), []);
});
