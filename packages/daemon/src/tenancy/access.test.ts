import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ForkdError } from '@forkd/protocol';
import { assertScope, canChange, canSee, ownerOf } from './access.js';

const admin = { identity: 'root', scope: 'admin' } as const;
const alice = { identity: 'alice', scope: 'user' } as const;
const auditor = { identity: 'alice', scope: 'read-only' } as const;
const forbidden = (e: unknown) => e instanceof ForkdError && e.code === 'FORKD_E_FORBIDDEN' && e.status === 403;

test('visibility: admins see all; users and read-only their own and shared; only owners and admins change', () => {
  assert.equal(ownerOf({}), 'local');
  assert.equal(ownerOf({ owner: 'bob' }), 'bob');
  assert.deepEqual([canSee(admin, 'bob'), canSee(alice, 'bob'), canSee(alice, 'alice'), canSee(alice, 'bob', true), canSee(auditor, 'alice')], [true, false, true, true, true]);
  assert.deepEqual([canChange(admin, 'bob'), canChange(alice, 'bob'), canChange(alice, 'alice')], [true, false, true]);
});

test('scopes: read-only calls GET routes only; admin routes need an admin', () => {
  assertScope(auditor, 'GET', { name: 'listSandboxes' });
  for (const m of ['POST', 'PUT', 'DELETE']) assert.throws(() => assertScope(auditor, m, { name: 'x' }), forbidden, m);
  assert.throws(() => assertScope(alice, 'POST', { name: 'shareSnapshot', admin: true }), forbidden);
  assertScope(admin, 'POST', { name: 'shareSnapshot', admin: true });
  assertScope(alice, 'DELETE', { name: 'killSandbox' });
});
