/**
 * Admission of snapshot writes on a real daemon (issue 9, review L2 and V3): with a snapshot store
 * cap smaller than one RAM image, a branch, a fork and a diff are refused with a 507 before
 * anything is written (no staging directory, no snapshot, no child), and a fork count above
 * --max-sandboxes is a 400 before its capture.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { testEngine } from '@forkd/engine/testing';
import { startTestDaemon, type TestDaemon } from './testing/daemon.js';
import { raw, errorCode } from './testing/http.js';

let d: TestDaemon;
let id = '';
const J = { 'content-type': 'application/json' };
const post = (path: string, body: unknown) => raw(d, { method: 'POST', path, body: JSON.stringify(body), headers: J });

before(async () => {
  d = await startTestDaemon({ extraArgs: ['--snapshot-store-max-gib', '0.01', '--max-sandboxes', '3'] });
  const r = await post('/v1/sandboxes', { snapshot_tag: d.tag, n: 1 });
  assert.equal(r.status, 201, r.text);
  id = (r.json as Array<{ id: string }>)[0]!.id;
});
after(async () => {
  await d?.stop();
});

async function staging(): Promise<string[]> {
  return (await fs.readdir(testEngine().layout.snapshots)).filter((n) => n.startsWith('.staging'));
}

async function tags(): Promise<string[]> {
  return ((await raw(d, { method: 'GET', path: '/v1/snapshots' })).json as Array<{ tag: string }>).map((s) => s.tag);
}

test('a store cap smaller than the RAM image refuses branch, fork and diff with a 507, leaving nothing behind', async () => {
  const before = await staging();
  // Other tests' forks keep their snapshots in a shared home: only new tags count.
  const tagsBefore = new Set(await tags());
  for (const [what, r] of [
    ['branch', await post(`/v1/sandboxes/${id}/branch`, { tag: 'capped-branch' })],
    ['background branch', await post(`/v1/sandboxes/${id}/branch`, { tag: 'capped-bg', wait: false })],
    ['fork', await post(`/v1/sandboxes/${id}/fork`, { count: 1 })],
    ['diff', await post(`/v1/snapshots/${d.tag}/diff`, { to: 'capped-diff', cmd: 'true' })],
  ] as const) {
    assert.equal(r.status, 507, `${what}: ${r.status} ${r.text.slice(0, 300)}`);
    assert.equal(errorCode(r), 'FORKD_E_INSUFFICIENT_STORAGE', what);
    assert.match(r.text, /snapshot-store-max-gib/, what);
  }
  assert.deepEqual((await tags()).filter((t) => !tagsBefore.has(t)), []);
  assert.deepEqual(await staging(), before);
  const sandboxes = (await raw(d, { method: 'GET', path: '/v1/sandboxes' })).json as unknown[];
  assert.equal(sandboxes.length, 1, 'the refused fork started no child');
  // Refusals hold nothing: the sandbox still answers and spawns still fit.
  assert.equal((await raw(d, { method: 'POST', path: `/v1/sandboxes/${id}/ping` })).status, 200);
});

test('a fork count above --max-sandboxes is a 400 before anything is captured', async () => {
  const r = await post(`/v1/sandboxes/${id}/fork`, { count: 4 });
  assert.equal(r.status, 400, r.text);
  assert.equal(errorCode(r), 'FORKD_E_INVALID_ARGUMENT');
  assert.match(r.text, /max-sandboxes 3/);
});
