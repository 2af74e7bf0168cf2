import { test } from 'node:test';
import assert from 'node:assert/strict';
import { webhookFromFlags } from './serve.js';

test('--webhook flags: a URL needs a secret file, companions need a URL, kinds are checked', () => {
  assert.equal(webhookFromFlags({}), undefined);
  assert.deepEqual(webhookFromFlags({ webhook: 'http://127.0.0.1:9/h', webhookSecretFile: '/s', webhookKinds: 'oom, timed_out' }), { url: 'http://127.0.0.1:9/h', secretFile: '/s', kinds: ['oom', 'timed_out'] });
  assert.deepEqual(webhookFromFlags({ webhook: 'https://hooks.example/h', webhookSecretFile: '/s', webhookAllowRemote: true }), { url: 'https://hooks.example/h', secretFile: '/s', allowRemote: true });
  assert.throws(() => webhookFromFlags({ webhook: 'http://127.0.0.1:9/h' }), /needs --webhook-secret-file/);
  assert.throws(() => webhookFromFlags({ webhookSecretFile: '/s' }), /need --webhook <url>/);
  assert.throws(() => webhookFromFlags({ webhook: 'http://127.0.0.1:9/h', webhookSecretFile: '/s', webhookKinds: 'created,nope' }), /unknown kind "nope"/);
});
