/**
 * Tenancy against a real daemon and real VMs (security review A1, probe P4): two user tokens,
 * an admin and a read-only token. A user sees and touches only its own sandboxes and snapshots,
 * spawns from snapshots an admin shared, and gets 404 (as for a missing resource) for anything of
 * another identity.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { startTestDaemon, type TestDaemon } from './testing/daemon.js';
import { raw, errorCode, type RawReply } from './testing/http.js';

let d: TestDaemon;
before(async () => {
  d = await startTestDaemon({ identities: [{ identity: 'root', scope: 'admin' }, { identity: 'alice', scope: 'user' }, { identity: 'bob', scope: 'user' }, { identity: 'auditor', scope: 'read-only' }] });
});
after(async () => {
  await d?.stop();
});

function as(who: string, method: string, path: string, body?: unknown): Promise<RawReply> {
  return raw(d, { method, path, headers: { authorization: `Bearer ${d.tokens[who]}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}), timeoutMs: 300_000 });
}

const expect = (r: RawReply, status: number, code?: string, what = '') => {
  assert.equal(r.status, status, `${what}: ${r.text.slice(0, 300)}`);
  if (code) assert.equal(errorCode(r), code, what);
};

test('users see only their own sandboxes and snapshots; another identity\'s answer 404; shared snapshots are spawned from, not deleted', async () => {
  // The fixture snapshot was made outside the daemon: the local admin's, not shared.
  const tags = (r: RawReply) => (r.json as Array<{ tag: string }>).map((s) => s.tag);
  assert.ok(!tags(await as('alice', 'GET', '/v1/snapshots')).includes(d.tag), 'an unshared admin snapshot is listed to a user');
  expect(await as('alice', 'POST', '/v1/sandboxes', { snapshot_tag: d.tag }), 404, 'FORKD_E_SNAPSHOT_NOT_FOUND', 'spawn from an unshared snapshot');
  expect(await as('alice', 'POST', `/v1/snapshots/${d.tag}/share`), 403, 'FORKD_E_FORBIDDEN', 'a user shares');
  const shared = await as('root', 'POST', `/v1/snapshots/${d.tag}/share`);
  expect(shared, 200, undefined, 'admin shares');
  assert.deepEqual([(shared.json as { shared: boolean }).shared, (shared.json as { owner: string }).owner], [true, 'local']);
  assert.ok(tags(await as('bob', 'GET', '/v1/snapshots')).includes(d.tag), 'a shared snapshot is listed to every user');

  // read-only: GET routes only.
  expect(await as('auditor', 'POST', '/v1/sandboxes', { snapshot_tag: d.tag }), 403, 'FORKD_E_FORBIDDEN', 'read-only spawns');
  expect(await as('auditor', 'GET', '/v1/sandboxes'), 200, undefined, 'read-only lists');

  const spawned = await as('alice', 'POST', '/v1/sandboxes', { snapshot_tag: d.tag, timeout_ms: 600_000 });
  expect(spawned, 201, undefined, 'alice spawns from the shared snapshot');
  const sb = (spawned.json as Array<{ id: string; owner: string }>)[0]!;
  assert.equal(sb.owner, 'alice');
  try {
    const ids = async (who: string) => ((await as(who, 'GET', '/v1/sandboxes')).json as Array<{ id: string }>).map((s) => s.id);
    assert.ok(!(await ids('bob')).includes(sb.id), 'bob lists alice\'s sandbox');
    assert.ok(!(await ids('auditor')).includes(sb.id), 'read-only sees other identities\' sandboxes');
    assert.ok((await ids('root')).includes(sb.id), 'the admin does not see alice\'s sandbox');
    assert.ok((await ids('alice')).includes(sb.id));

    // Every route on alice's sandbox answers bob as for a sandbox that does not exist.
    const missing = await as('bob', 'GET', '/v1/sandboxes/sb-0123456789abcdef');
    for (const [method, path, body] of [
      ['GET', `/v1/sandboxes/${sb.id}`, undefined],
      ['POST', `/v1/sandboxes/${sb.id}/exec`, { cmd: 'id' }],
      ['POST', `/v1/sandboxes/${sb.id}/eval`, { code: '1+1' }],
      ['GET', `/v1/sandboxes/${sb.id}/files?path=/etc/hostname`, undefined],
      ['GET', `/v1/sandboxes/${sb.id}/files/list?path=/`, undefined],
      ['POST', `/v1/sandboxes/${sb.id}/branch`, { tag: 'stolen-ram' }],
      ['POST', `/v1/sandboxes/${sb.id}/fork`, { count: 1 }],
      ['POST', `/v1/sandboxes/${sb.id}/timeout`, { timeout_ms: 1000 }],
      ['POST', '/v1/workspaces', { name: 'stolen', sandbox_id: sb.id }],
      ['DELETE', `/v1/sandboxes/${sb.id}`, undefined],
    ] as const) {
      const r = await as('bob', method, path, body);
      expect(r, 404, 'FORKD_E_SANDBOX_NOT_FOUND', `bob ${method} ${path}`);
      assert.equal((r.json as { error: { message: string } }).error.message, (missing.json as { error: { message: string } }).error.message.replace('sb-0123456789abcdef', sb.id), 'the 404 differs from a missing sandbox\'s');
    }
    expect(await as('alice', 'POST', `/v1/sandboxes/${sb.id}/exec`, { cmd: 'true' }), 200, undefined, 'alice\'s sandbox survived bob');

    // alice's branch is alice's snapshot: invisible to bob, who can neither spawn from it nor delete it.
    expect(await as('alice', 'POST', `/v1/sandboxes/${sb.id}/branch`, { tag: 'ws-bob-s000001' }), 400, 'FORKD_E_INVALID_TAG', 'a ws- tag through REST');
    const branch = await as('alice', 'POST', `/v1/sandboxes/${sb.id}/branch`, { tag: 'tenancy-branch-1', mode: 'full' });
    expect(branch, 201, undefined, 'alice branches');
    assert.equal((branch.json as { owner: string }).owner, 'alice');
    assert.ok(!tags(await as('bob', 'GET', '/v1/snapshots')).includes('tenancy-branch-1'));
    expect(await as('bob', 'GET', '/v1/snapshots/tenancy-branch-1'), 404, 'FORKD_E_SNAPSHOT_NOT_FOUND', 'bob reads alice\'s snapshot');
    expect(await as('bob', 'POST', '/v1/sandboxes', { snapshot_tag: 'tenancy-branch-1' }), 404, 'FORKD_E_SNAPSHOT_NOT_FOUND', 'bob spawns from alice\'s snapshot');
    expect(await as('bob', 'DELETE', '/v1/snapshots/tenancy-branch-1?force=true'), 404, 'FORKD_E_SNAPSHOT_NOT_FOUND', 'bob deletes alice\'s snapshot');
    expect(await as('bob', 'DELETE', `/v1/snapshots/${d.tag}`), 403, 'FORKD_E_FORBIDDEN', 'bob deletes the shared snapshot');
    // Tags are global: bob cannot take alice's, and is told only that it is unavailable.
    const taken = await as('bob', 'POST', '/v1/snapshots', { tag: 'tenancy-branch-1', recipe: 'python' });
    expect(taken, 409, 'FORKD_E_SNAPSHOT_EXISTS', 'bob reuses alice\'s tag');
    assert.match(taken.text, /unavailable/);
    assert.doesNotMatch(taken.text, /alice/);
    const tree = JSON.stringify((await as('bob', 'GET', '/v1/snapshots/tree')).json);
    assert.ok(!tree.includes('tenancy-branch-1') && !tree.includes(sb.id), 'the tree shows bob alice\'s snapshot or sandbox');
    const adminView = (await as('root', 'GET', '/v1/snapshots')).json as Array<{ tag: string; owner: string }>;
    assert.equal(adminView.find((s) => s.tag === 'tenancy-branch-1')?.owner, 'alice');

    // Unshared again: users no longer spawn from it (the running sandbox is not touched).
    expect(await as('root', 'POST', `/v1/snapshots/${d.tag}/unshare`), 200, undefined, 'admin unshares');
    expect(await as('bob', 'POST', '/v1/sandboxes', { snapshot_tag: d.tag }), 404, 'FORKD_E_SNAPSHOT_NOT_FOUND', 'spawn from an unshared snapshot');
    expect(await as('alice', 'DELETE', '/v1/snapshots/tenancy-branch-1'), 204, undefined, 'alice deletes her own branch');
  } finally {
    await as('root', 'DELETE', `/v1/sandboxes/${sb.id}`);
  }

  // The audit log names identities, never tokens.
  await new Promise((r) => setTimeout(r, 200));
  const audit = await fs.readFile(d.auditPath, 'utf8');
  for (const t of Object.values(d.tokens)) assert.ok(!audit.includes(t), 'a token is in the audit log');
  const lines = audit.trim().split('\n').map((l) => JSON.parse(l) as { caller: string; scope?: string; method: string; path: string; status: number });
  const bobDelete = lines.find((l) => l.method === 'DELETE' && l.path === `/v1/sandboxes/${sb.id}` && l.status === 404);
  assert.deepEqual([bobDelete?.caller, bobDelete?.scope], ['bob', 'user']);
  assert.ok(lines.some((l) => l.caller === 'auditor' && l.status === 403));
});
