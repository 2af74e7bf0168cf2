import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ForkdError } from '@forkd/protocol';
import type { SandboxRegistry } from '../sandboxes/registry.js';
import type { SnapshotWrites, Writing } from './writes.js';
import { canSee, ownerOf } from '../tenancy/access.js';
import { assertDeletable } from './deletion.js';
import type { Caller } from '../http/auth.js';

/** Sandboxes (id, tag, owner) and writes in flight, as the registry and SnapshotWrites report them. */
function fakes(sbs: Array<[string, string, string]>, writing: Array<Partial<Writing>> = []) {
  const entries = sbs.map(([id, tag, owner]) => ({ rec: { id, snapshot_tag: tag, owner } }));
  const sandboxes = {
    usage: (tag: string) => entries.filter((e) => e.rec.snapshot_tag === tag).map((e) => e.rec.id),
    list: (f: { tag: string; visibleTo: Caller }) => entries.filter((e) => e.rec.snapshot_tag === f.tag && canSee(f.visibleTo, ownerOf(e.rec))),
  } as unknown as SandboxRegistry;
  const ws = writing.map((w) => ({ status: 'writing', source: null, owner: 'local', ...w }) as Writing);
  const writes = { list: (by: Caller | null = null) => ws.filter((w) => !by || canSee(by, w.owner)) } as unknown as SnapshotWrites;
  return { sandboxes, writes };
}
const inUse = (re: RegExp) => (e: unknown) => e instanceof ForkdError && e.code === 'FORKD_E_IN_USE' && re.test(e.message);
const alice: Caller = { identity: 'alice', scope: 'user' };

test('a workspace delete (the daemon\'s own check) is refused while another sandbox runs from a state snapshot, not for its own', () => {
  const f = fakes([['sb-own', 'ws-w-s000001', 'alice'], ['sb-other', 'ws-w-s000002', 'alice']]);
  assertDeletable(f.sandboxes, f.writes, { doomed: ['ws-w-s000001'], force: false, by: null, ignore: ['sb-own'] });
  assert.throws(() => assertDeletable(f.sandboxes, f.writes, { doomed: ['ws-w-s000002', 'ws-w-s000001'], force: false, by: null, ignore: ['sb-own'] }), inUse(/sb-other/));
});

test('a snapshot being written, or written from, cannot be deleted', () => {
  const f = fakes([], [{ tag: 'ws-w-s000003', source: 'ws-w-s000002' }]);
  assert.throws(() => assertDeletable(f.sandboxes, f.writes, { doomed: ['ws-w-s000002'], force: true, by: null }), inUse(/ws-w-s000003/));
  assert.throws(() => assertDeletable(f.sandboxes, f.writes, { doomed: ['ws-w-s000003'], force: true, by: null }), inUse(/being written/));
});

test('a user\'s force covers its own sandboxes only; others\' are counted, never named', () => {
  const f = fakes([['sb-a', 'base', 'alice'], ['sb-b', 'base', 'bob']], [{ tag: 'bobs-branch', source: 'base', owner: 'bob' }]);
  assert.throws(() => assertDeletable(f.sandboxes, f.writes, { doomed: ['base'], force: true, by: alice }), (e) => inUse(/1 sandbox\(es\) of other identities/)(e) && !/sb-b/.test((e as Error).message));
  const g = fakes([['sb-a', 'base', 'alice']], [{ tag: 'bobs-branch', source: 'base', owner: 'bob' }]);
  assert.throws(() => assertDeletable(g.sandboxes, g.writes, { doomed: ['base'], force: false, by: alice }), inUse(/sb-a.*force=true/));
  assert.throws(() => assertDeletable(g.sandboxes, g.writes, { doomed: ['base'], force: true, by: alice }), (e) => inUse(/another identity's snapshot/)(e) && !/bobs-branch/.test((e as Error).message));
});
