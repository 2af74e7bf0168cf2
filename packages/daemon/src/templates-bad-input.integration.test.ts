/**
 * Bad templates over REST, refused with their code and a message naming what is wrong, before any
 * job or VM: an unknown step type, hostile copy and workdir paths, option-shaped install
 * arguments, a template file upload under a name that is not a digest, bytes that do not match
 * their digest, and an upload declared over the size limit (413, the body never read). No VM:
 * the daemon runs without the fixture snapshot and nothing here boots one.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { LIMITS } from '@forkd/protocol';
import { startTestDaemon, type TestDaemon } from './testing/daemon.js';
import { errorCode, raw } from './testing/http.js';

let d: TestDaemon;
before(async () => {
  d = await startTestDaemon({ fixture: false });
});
after(async () => {
  await d?.stop();
});

const SHA = 'd'.repeat(64);
const build = (template: Record<string, unknown>) => raw(d, { method: 'POST', path: '/v1/templates', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tag: 'bad-tpl', template: { name: 'bad-tpl', from: 'python', ...template } }) });
const message = (r: { json: unknown }) => String((r.json as { error?: { message?: string } }).error?.message);

test('an unknown step type is a 400 naming the step and the known types', async () => {
  const r = await build({ steps: [{ type: 'run', cmd: 'true' }, { type: 'frobnicate', what: 'x' }] });
  assert.equal(r.status, 400, r.text);
  assert.equal(errorCode(r), 'FORKD_E_INVALID_ARGUMENT');
  assert.match(message(r), /steps\.1\.type/);
  assert.match(message(r), /'apt' \| 'pip' \| 'npm' \| 'copy' \| 'run' \| 'env' \| 'workdir'/);
});

test('hostile copy destinations and working directories are 400s', async () => {
  for (const dest of ['/srv/../etc/shadow', 'etc/x', '/proc/sysrq-trigger', '/dev/sda', '/']) {
    const r = await build({ steps: [{ type: 'copy', files: [{ sha256: SHA, dest }] }] });
    assert.equal(r.status, 400, `${dest}: ${r.text}`);
    assert.equal(errorCode(r), 'FORKD_E_INVALID_ARGUMENT');
    assert.match(message(r), /steps\.0\.files\.0\.dest/);
  }
  const w = await build({ steps: [{ type: 'workdir', path: '/sys/x' }] });
  assert.equal(errorCode(w), 'FORKD_E_INVALID_ARGUMENT');
  const opt = await build({ steps: [{ type: 'pip', packages: ['--index-url=http://10.0.0.1/'] }] });
  assert.equal(errorCode(opt), 'FORKD_E_INVALID_ARGUMENT');
  assert.match(message(opt), /packages\.0/);
});

test('template file uploads: a name that is not a digest, bytes that do not match, a declared size over the limit', async () => {
  const put = (name: string, body: Buffer, headers: Record<string, string> = {}) => raw(d, { method: 'PUT', path: `/v1/template-files/${name}`, body, headers: { 'content-type': 'application/octet-stream', ...headers } });
  for (const name of ['..%2F..%2Fetc%2Fpasswd', 'not-a-digest', SHA.toUpperCase()]) {
    const r = await put(name, Buffer.from('x'));
    assert.equal(r.status, 400, `${name}: ${r.text}`);
    assert.equal(errorCode(r), 'FORKD_E_INVALID_ARGUMENT');
  }
  const wrong = await put(SHA, Buffer.from('these bytes hash to something else'));
  assert.equal(wrong.status, 400);
  assert.match(message(wrong), /hash to/);
  const big = await put(crypto.createHash('sha256').update('x').digest('hex'), Buffer.from('x'), { 'content-length': String(LIMITS.templates.maxCopyFileBytes + 1) }).catch((e: Error) => ({ status: -1, text: e.message, json: null, headers: {} }));
  assert.equal(big.status, 413, big.text);
  assert.equal(errorCode(big as never), 'FORKD_E_PAYLOAD_TOO_LARGE');
  const missing = await raw(d, { method: 'POST', path: '/v1/template-files/missing', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sha256: [SHA] }) });
  assert.deepEqual(missing.json, { missing: [SHA] }, 'nothing refused was kept');
});
