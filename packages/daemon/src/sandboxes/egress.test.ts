/** Egress settings and the policy fields over REST (no VM: validation happens before any sandbox is touched). */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { ForkdError } from '@forkd/protocol';
import { egressSettings, egressRecord, egressRequest } from './egress.js';
import { startTestDaemon, type TestDaemon } from '../testing/daemon.js';
import { raw, errorCode } from '../testing/http.js';

const invalid = (e: unknown) => e instanceof ForkdError && e.code === 'FORKD_E_INVALID_ARGUMENT';

test('operator flags are checked at start', () => {
  assert.equal(egressSettings().defaultEgress, 'deny');
  assert.equal(egressSettings({ defaultEgress: 'public', allowPrivate: ['10.77.0.0/24'], resolvers: ['10.77.0.2', '10.77.0.2:5353'] }).defaultEgress, 'public');
  assert.throws(() => egressSettings({ defaultEgress: 'open' }), invalid);
  assert.throws(() => egressSettings({ allowPrivate: ['10.77.0.1/24'] }), invalid);
  assert.throws(() => egressSettings({ allowPrivate: ['example.com'] }), invalid);
  assert.throws(() => egressSettings({ allowPrivate: ['10.0.0.0/8:80'] }), invalid);
  assert.throws(() => egressSettings({ resolvers: ['10.0.0.0/8'] }), invalid);
});

test('a request becomes a record resolved against the default, and back', () => {
  assert.equal(egressRecord({}, 'deny'), null);
  assert.deepEqual(egressRecord({ allow_out: ['pypi.org'] }, 'public'), { allow_internet_access: true, allow_out: ['pypi.org'], deny_out: [] });
  const r = egressRecord({ allow_internet_access: true, deny_out: ['0.0.0.0/0'], allow_out: ['1.1.1.1'] }, 'deny')!;
  assert.equal(r.allow_internet_access, false, "E2B's deny-all idiom");
  assert.deepEqual(egressRequest(r), { allowInternetAccess: false, allowOut: ['1.1.1.1'], denyOut: ['0.0.0.0/0'] });
  assert.throws(() => egressRecord({ allow_out: ['nope nope'] }, 'deny'), invalid);
});

const daemons: TestDaemon[] = [];
after(async () => {
  await Promise.all(daemons.map((d) => d.stop()));
});

test('REST: bad entries are 400 FORKD_E_INVALID_ARGUMENT naming the entry; updateNetwork of an unknown sandbox is 404', async () => {
  const d = await startTestDaemon({ fixture: false, extraArgs: ['--default-egress', 'deny', '--egress-allow-private', '10.77.0.0/24'] });
  daemons.push(d);
  const json = { 'content-type': 'application/json' };
  const spawn = await raw(d, { method: 'POST', path: '/v1/sandboxes', headers: json, body: JSON.stringify({ snapshot_tag: 'nope', allow_out: ['1.2.3.4/24'] }) });
  assert.equal(spawn.status, 400);
  assert.equal(errorCode(spawn), 'FORKD_E_INVALID_ARGUMENT');
  assert.match(spawn.text, /host bits/);
  const bad = await raw(d, { method: 'PUT', path: '/v1/sandboxes/sb-0123456789abcdef/network', headers: json, body: JSON.stringify({ allow_out: ['pypi.org:22'] }) });
  assert.equal(bad.status, 400);
  assert.match(bad.text, /HTTP \(80\) and TLS \(443\) only/);
  const tooMany = await raw(d, { method: 'PUT', path: '/v1/sandboxes/sb-0123456789abcdef/network', headers: json, body: JSON.stringify({ deny_out: Array(257).fill('1.2.3.4') }) });
  assert.equal(errorCode(tooMany), 'FORKD_E_INVALID_ARGUMENT');
  const unknown = await raw(d, { method: 'PUT', path: '/v1/sandboxes/sb-0123456789abcdef/network', headers: json, body: JSON.stringify({ allow_out: ['pypi.org:443'] }) });
  assert.equal(unknown.status, 404);
  assert.equal(errorCode(unknown), 'FORKD_E_SANDBOX_NOT_FOUND');
});

test('a bad --egress-allow-private stops the daemon at start', async () => {
  await assert.rejects(startTestDaemon({ fixture: false, extraArgs: ['--egress-allow-private', '10.77.0.1/24'] }), /egress-allow-private|host bits|exit/i);
});
