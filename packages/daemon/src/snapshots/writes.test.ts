import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { ForkdError } from '@forkd/protocol';
import type { Engine } from '@forkd/engine';
import { Journal } from '../state/journal.js';
import { Jobs } from '../jobs.js';
import { SnapshotWrites } from './writes.js';
import { SnapshotOwners } from '../tenancy/snapshot-owners.js';
import { LOCAL_ADMIN } from '../http/auth.js';
import { roomyAdmission } from '../testing/admission.js';
import { Workspaces, type WorkspaceRecord } from '../workspaces/registry.js';
import type { SandboxRegistry } from '../sandboxes/registry.js';

/** An engine whose store holds `present` and nothing else. */
function fakeEngine(present: Set<string>, extra: Partial<Engine> = {}): Engine {
  return {
    getSnapshot: async (tag: string) => {
      if (present.has(tag)) return { tag, manifest: { machine: { mem_mib: 256 }, files: { vmstate: { sha256: `sha-${tag}` } } } };
      throw new ForkdError('FORKD_E_SNAPSHOT_NOT_FOUND', `no snapshot ${tag}`);
    },
    ...extra,
  } as unknown as Engine;
}

async function withJournal(fn: (journal: Journal) => Promise<void>): Promise<void> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'forkd-writes-'));
  const { journal } = await Journal.open(path.join(dir, 'state.jsonl'));
  try {
    await fn(journal);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

const isCode = (code: string) => (e: unknown) => e instanceof ForkdError && e.code === code;

test('produce: the tag is reserved while the work runs; a background failure stays listed until the tag is reused or forgotten', async () => {
  await withJournal(async (journal) => {
    const present = new Set(['base']);
    const writes = new SnapshotWrites(fakeEngine(present), new Jobs(journal), roomyAdmission(), new SnapshotOwners(journal));
    await assert.rejects(writes.produce({ tag: 'base', kind: 'branch', source: 'base', owner: 'local', wait: true }, async () => 1), isCode('FORKD_E_SNAPSHOT_EXISTS'));

    let finish!: () => void;
    const inline = writes.produce({ tag: 'b1', kind: 'branch', source: 'base', owner: 'local', wait: true }, () => new Promise<number>((r) => (finish = () => { present.add('b1'); r(7); })));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(writes.list().map((w) => [w.tag, w.status]), [['b1', 'writing']]);
    await assert.rejects(writes.produce({ tag: 'b1', kind: 'compact', source: 'base', owner: 'local', wait: false }, async () => 1), isCode('FORKD_E_SNAPSHOT_EXISTS'));
    assert.throws(() => writes.assertNotWriting('b1', null), isCode('FORKD_E_CONFLICT'));
    finish();
    assert.deepEqual(await inline, { waited: true, result: 7 });
    assert.deepEqual(writes.list(), []);

    const bg = await writes.produce({ tag: 'b2', kind: 'branch', source: 'base', owner: 'local', wait: false }, async () => {
      throw new ForkdError('FORKD_E_SANDBOX_NOT_RUNNING', 'the sandbox went away');
    });
    assert.ok(!bg.waited);
    assert.equal(bg.writing.job, bg.job.id);
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(writes.list().map((w) => [w.tag, w.status, w.error]), [['b2', 'failed', 'the sandbox went away']]);
    writes.assertNotWriting('b2', null); // a failed write blocks nothing
    // Writing the tag again replaces the failed entry; a failure inline leaves nothing behind.
    await assert.rejects(writes.produce({ tag: 'b2', kind: 'branch', source: 'base', owner: 'local', wait: true }, async () => { throw new Error('again'); }), /again/);
    assert.deepEqual(writes.list(), []);
    await writes.produce({ tag: 'b3', kind: 'diff', source: 'base', owner: 'local', wait: false }, async () => { throw new Error('x'); });
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(writes.forgetFailed('b3', LOCAL_ADMIN), true);
    assert.equal(writes.forgetFailed('b3', LOCAL_ADMIN), false);
    assert.deepEqual(writes.list(), []);
  });
});

test('workspace suspend reserves its state tag: another write of that tag is refused while the capture runs', async () => {
  await withJournal(async (journal) => {
    let captured!: () => void;
    const capturing = new Promise<void>((r) => (captured = r));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const present = new Set(['base']);
    const engine = fakeEngine(present, {
      branch: (async (_sb: unknown, o: { tag: string }) => {
        captured();
        await gate;
        present.add(o.tag);
        return { mode: 'full' };
      }) as unknown as Engine['branch'],
      ancestors: async () => ['base'],
    });
    const live = { rec: { id: 'sb-0123456789abcdef', snapshot_tag: 'base' }, sb: {} };
    const sandboxes = { get: () => live, kill: async () => undefined, list: () => [] } as unknown as SandboxRegistry;
    const writes = new SnapshotWrites(engine, new Jobs(journal), roomyAdmission(), new SnapshotOwners(journal));
    const workspaces = new Workspaces(engine, journal, sandboxes, writes, new SnapshotOwners(journal), pino({ level: 'silent' }));
    const w: WorkspaceRecord = { name: 'w', snapshot_tag: 'base', status: 'running', sandbox_id: live.rec.id, state_tag: null, created_at_unix: 0, suspended_at_unix: null, metadata: {}, envs: {}, seq: 0, warning: null };
    await journal.put('workspace', 'w', w);

    const suspended = workspaces.suspend('w', null);
    await capturing;
    assert.deepEqual(writes.list().map((x) => [x.tag, x.kind, x.source, x.sandbox, x.status]), [['ws-w-s000001', 'branch', 'base', live.rec.id, 'writing']]);
    await assert.rejects(writes.produce({ tag: 'ws-w-s000001', kind: 'create', source: null, owner: 'local', wait: true }, async () => 1), isCode('FORKD_E_SNAPSHOT_EXISTS'));
    release();
    const done = await suspended;
    assert.deepEqual([done.status, done.state_tag], ['suspended', 'ws-w-s000001']);
    assert.deepEqual(writes.list(), []);
  });
});
