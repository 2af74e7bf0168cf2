/**
 * Push and pull over REST against a real loopback registry with Basic auth: admin only, as jobs
 * with progress; the registry password reaches neither the job record nor the audit log. The
 * fixture snapshot is pushed and pulled back under another tag (no VM boots once the fixture exists).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import crypto from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { startTestDaemon, type TestDaemon } from './testing/daemon.js';
import { raw, errorCode } from './testing/http.js';
import { startRegistry, type TestRegistry } from '@forkd/engine/testing';

let d: TestDaemon;
let reg: TestRegistry;
const PASSWORD = 'reg-pass-never-logged-7f3a';
const pulledTag = `rest-pulled-${process.pid}`;
let policyDir = '';

before(async () => {
  reg = await startRegistry({ users: { carol: PASSWORD } });
  // The operator's trust policy: forkd/guarded needs a key nobody signed with; other repositories need nothing.
  policyDir = await fs.mkdtemp(path.join(os.tmpdir(), 'forkd-rest-trust-'));
  const pub = crypto.generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }) as string;
  await fs.writeFile(path.join(policyDir, 'policy.json'), JSON.stringify({ version: 1, scopes: { [`${reg.host}/forkd/guarded`]: { keys: [pub] } } }));
  d = await startTestDaemon({ tcp: true, identities: [{ identity: 'root', scope: 'admin' }, { identity: 'dev', scope: 'user' }], env: { FORKD_TRUST_POLICY: path.join(policyDir, 'policy.json') } });
});
after(async () => {
  if (d) await raw(d, { method: 'DELETE', path: `/v1/snapshots/${pulledTag}`, headers: { authorization: `Bearer ${d.tokens.root}` }, tcp: true }).catch(() => undefined);
  await d?.stop();
  await reg?.stop();
  if (policyDir) await fs.rm(policyDir, { recursive: true, force: true });
});

const as = (who: string) => ({ authorization: `Bearer ${d.tokens[who]}`, 'content-type': 'application/json' });

async function waitJob(id: string): Promise<{ status: string; result: unknown; error: { code: string } | null; progress: { message: string } }> {
  for (let i = 0; i < 600; i++) {
    const r = await raw(d, { method: 'GET', path: `/v1/jobs/${id}`, headers: as('root'), tcp: true });
    const j = JSON.parse(r.text);
    if (j.status === 'succeeded' || j.status === 'failed') return j;
    await new Promise((res) => setTimeout(res, 500));
  }
  throw new Error(`job ${id} did not finish`);
}

test('push and pull are admin only', async () => {
  const push = await raw(d, { method: 'POST', path: `/v1/snapshots/${d.tag}/push`, headers: as('dev'), body: JSON.stringify({ ref: `${reg.host}/forkd/rest:v1` }), tcp: true });
  assert.equal(push.status, 403, push.text);
  const pull = await raw(d, { method: 'POST', path: '/v1/snapshot-pulls', headers: as('dev'), body: JSON.stringify({ ref: `${reg.host}/forkd/rest:v1` }), tcp: true });
  assert.equal(pull.status, 403, pull.text);
});

test('a bad reference is a 400; wrong registry credentials fail the job with FORKD_E_REGISTRY_AUTH', async () => {
  const bad = await raw(d, { method: 'POST', path: `/v1/snapshots/${d.tag}/push`, headers: as('root'), body: JSON.stringify({ ref: 'NOT A REF', wait: true }), tcp: true });
  assert.equal(bad.status, 400, bad.text);
  assert.equal(errorCode(bad), 'FORKD_E_INVALID_ARGUMENT');
  const r = await raw(d, { method: 'POST', path: `/v1/snapshots/${d.tag}/push`, headers: as('root'), body: JSON.stringify({ ref: `${reg.host}/forkd/rest:v1`, username: 'carol', password: 'wrong' }), tcp: true });
  assert.equal(r.status, 202, r.text);
  const j = await waitJob(JSON.parse(r.text).id);
  assert.equal(j.status, 'failed');
  assert.equal(j.error?.code, 'FORKD_E_REGISTRY_AUTH');
});

test('push as a job, then pull it back under another tag; the password is in no record', async () => {
  const r = await raw(d, { method: 'POST', path: `/v1/snapshots/${d.tag}/push`, headers: as('root'), body: JSON.stringify({ ref: `${reg.host}/forkd/rest:v1`, username: 'carol', password: PASSWORD }), tcp: true });
  assert.equal(r.status, 202, r.text);
  const pushed = await waitJob(JSON.parse(r.text).id);
  assert.equal(pushed.status, 'succeeded', JSON.stringify(pushed.error));
  const result = pushed.result as { digest: string; bytes_sent: number };
  assert.match(result.digest, /^sha256:[0-9a-f]{64}$/);
  assert.ok(result.bytes_sent > 1024 * 1024);

  const p = await raw(d, { method: 'POST', path: '/v1/snapshot-pulls', headers: as('root'), body: JSON.stringify({ ref: `${reg.host}/forkd/rest:v1`, tag: pulledTag, username: 'carol', password: PASSWORD, wait: true }), tcp: true, timeoutMs: 600_000 });
  assert.equal(p.status, 201, p.text);
  const pulled = JSON.parse(p.text) as { tag: string; digest: string; image_fetched: boolean; imported: string[]; verification: { status: string } };
  assert.equal(pulled.tag, pulledTag);
  assert.equal(pulled.verification.status, 'not-required', 'the operator policy has no rule for forkd/rest');
  assert.equal(pulled.digest, result.digest);
  assert.equal(pulled.image_fetched, false, 'the store has the image');
  assert.deepEqual(pulled.imported, [pulledTag]);
  const got = await raw(d, { method: 'GET', path: `/v1/snapshots/${pulledTag}`, headers: as('root'), tcp: true });
  assert.equal(got.status, 200, got.text);
  assert.equal(JSON.parse(got.text).owner, 'root');

  assert.ok(!(await fs.readFile(d.auditPath, 'utf8').catch(() => '')).includes(PASSWORD), 'audit log');
  assert.ok(!(await fs.readFile(d.statePath, 'utf8')).includes(PASSWORD), 'journal (job records)');
  assert.ok(!d.log().includes(PASSWORD), 'daemon log');
});

test("a pull follows the daemon's trust policy: unsigned under a requiring scope fails the job; a client can neither skip nor name a policy", async () => {
  const r = await raw(d, { method: 'POST', path: `/v1/snapshots/${d.tag}/push`, headers: as('root'), body: JSON.stringify({ ref: `${reg.host}/forkd/guarded:v1`, username: 'carol', password: PASSWORD, wait: true }), tcp: true, timeoutMs: 600_000 });
  assert.equal(r.status, 200, r.text);
  const p = await raw(d, { method: 'POST', path: '/v1/snapshot-pulls', headers: as('root'), body: JSON.stringify({ ref: `${reg.host}/forkd/guarded:v1`, tag: `${pulledTag}-guarded`, username: 'carol', password: PASSWORD }), tcp: true });
  assert.equal(p.status, 202, p.text);
  const j = await waitJob(JSON.parse(p.text).id);
  assert.equal(j.status, 'failed');
  assert.equal(j.error?.code, 'FORKD_E_SIGNATURE_MISSING');
  const got = await raw(d, { method: 'GET', path: `/v1/snapshots/${pulledTag}-guarded`, headers: as('root'), tcp: true });
  assert.equal(got.status, 404, 'nothing became visible');
  for (const extra of [{ insecure_skip_verify: true }, { trust_policy: '/dev/null' }]) {
    const bad = await raw(d, { method: 'POST', path: '/v1/snapshot-pulls', headers: as('root'), body: JSON.stringify({ ref: `${reg.host}/forkd/guarded:v1`, wait: true, ...extra }), tcp: true });
    assert.equal(bad.status, 400, bad.text);
  }
});
