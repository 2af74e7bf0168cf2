import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { ForkdError } from '@forkd/protocol';
import type { Engine } from '@forkd/engine';
import type { Journal } from '../state/journal.js';
import type { SandboxRegistry } from '../sandboxes/registry.js';
import type { SnapshotWrites } from '../snapshots/writes.js';
import { Workspaces, type WorkspaceRecord } from './registry.js';
import type { SnapshotOwners } from '../tenancy/snapshot-owners.js';
import { LOCAL_ADMIN } from '../http/auth.js';

/** Workspaces over in-memory fakes: a journal map, a snapshot tag set, and sandboxes that count spawns. */
function fixture() {
  const records = new Map<string, unknown>();
  const journal = {
    get: (_k: string, id: string) => records.get(id) ?? null,
    all: () => [...records.values()],
    put: async (_k: string, id: string, v: unknown) => void records.set(id, structuredClone(v)),
    delete: async (_k: string, id: string) => void records.delete(id),
  } as unknown as Journal;
  const snapshots = new Set<string>(['base']);
  const branched: string[] = [];
  const engine = {
    getSnapshot: async (tag: string) => {
      if (snapshots.has(tag)) return { tag };
      throw new ForkdError('FORKD_E_SNAPSHOT_NOT_FOUND', `no snapshot ${tag}`);
    },
    branch: async (_sb: unknown, o: { tag: string }) => void branched.push(o.tag),
    ancestors: async () => [],
  } as unknown as Engine;
  let spawns = 0;
  const spawnRequests: unknown[] = [];
  const live = { rec: { id: 'sb-1', snapshot_tag: 'base', metadata: {}, envs: {} } as Record<string, unknown>, sb: {} };
  const sandboxes = {
    spawn: async (req: unknown) => {
      spawns++;
      spawnRequests.push(req);
      await new Promise((r) => setTimeout(r, 20));
      return [live];
    },
    get: () => live,
    kill: async () => undefined,
    list: () => [live],
  } as unknown as SandboxRegistry;
  const writes = {
    produce: async (o: { tag: string }, fn: () => Promise<void>) => {
      if (snapshots.has(o.tag)) throw new ForkdError('FORKD_E_SNAPSHOT_EXISTS', `snapshot ${o.tag} exists`);
      await fn();
      snapshots.add(o.tag);
    },
    list: () => [],
  } as unknown as SnapshotWrites;
  const ws = new Workspaces(engine, journal, sandboxes, writes, { assertVisible: (_c: unknown, e: unknown) => e, forget: async () => undefined } as unknown as SnapshotOwners, pino({ level: 'silent' }));
  return { ws, records, snapshots, branched, live, spawnRequests, spawns: () => spawns };
}

test('two concurrent creates of one workspace name start one VM; the other is refused', async () => {
  const f = fixture();
  const results = await Promise.allSettled([f.ws.create({ name: 'dup', snapshot_tag: 'base' }, LOCAL_ADMIN), f.ws.create({ name: 'dup', snapshot_tag: 'base' }, LOCAL_ADMIN)]);
  assert.equal(f.spawns(), 1);
  assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
  const refused = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
  assert.equal((refused.reason as ForkdError).code, 'FORKD_E_WORKSPACE_EXISTS');
});

test('a suspend interrupted after its capture (the layer exists, the record never advanced) can be retried', async () => {
  const f = fixture();
  await f.ws.create({ name: 'w', snapshot_tag: 'base' }, LOCAL_ADMIN);
  // What a crash between the capture and the journal write leaves: the layer, and seq still 0.
  f.snapshots.add('ws-w-s000001');
  const w = await f.ws.suspend('w', null);
  assert.equal(w.status, 'suspended');
  assert.equal(w.state_tag, 'ws-w-s000002');
  assert.deepEqual(f.branched, ['ws-w-s000002']);
});

test('the sequence number is journaled before the capture starts', async () => {
  const f = fixture();
  await f.ws.create({ name: 'w', snapshot_tag: 'base' }, LOCAL_ADMIN);
  const seqAtCapture: number[] = [];
  const produce = (f.ws as unknown as { writes: { produce: (o: unknown, fn: () => Promise<void>) => Promise<void> } }).writes;
  const inner = produce.produce;
  produce.produce = async (o, fn) => {
    seqAtCapture.push((f.records.get('w') as WorkspaceRecord).seq);
    return inner(o, fn);
  };
  await f.ws.suspend('w', null);
  assert.deepEqual(seqAtCapture, [1]);
});

test('two concurrent resumes of one workspace restore one VM; the other is a clean 409', async () => {
  const f = fixture();
  await f.ws.create({ name: 'twice', snapshot_tag: 'base' }, LOCAL_ADMIN);
  await f.ws.suspend('twice', null);
  const before = f.spawns();
  const results = await Promise.allSettled([f.ws.resume('twice', null), f.ws.resume('twice', null)]);
  assert.equal(f.spawns() - before, 1);
  const refused = results.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined;
  assert.ok(refused, 'one resume is refused');
  assert.equal((refused.reason as ForkdError).code, 'FORKD_E_CONFLICT');
  assert.equal(f.ws.get('twice', null).status, 'running');
  // A delete during a suspend is refused instead of racing it.
  const [s, d] = await Promise.allSettled([f.ws.suspend('twice', null), f.ws.remove('twice', null)]);
  assert.equal(s.status, 'fulfilled');
  assert.equal(((d as PromiseRejectedResult).reason as ForkdError).code, 'FORKD_E_CONFLICT');
});

test('a networked workspace resumes with its network and the egress policy its sandbox had at suspend', async () => {
  const f = fixture();
  f.live.rec.network = true;
  f.live.rec.egress = { allow_internet_access: false, allow_out: ['10.0.0.0/8'], deny_out: [] };
  await f.ws.create({ name: 'netws', snapshot_tag: 'base', network: true }, LOCAL_ADMIN);
  // A PUT …/network changed the live sandbox's policy before the suspend.
  f.live.rec.egress = { allow_internet_access: false, allow_out: ['pypi.org'], deny_out: [] };
  await f.ws.suspend('netws', LOCAL_ADMIN);
  await f.ws.resume('netws', LOCAL_ADMIN);
  const resumed = f.spawnRequests.at(-1) as { network?: boolean; egress?: { allow_out: string[] } };
  assert.equal(resumed.network, true);
  assert.deepEqual(resumed.egress?.allow_out, ['pypi.org']);
});

test('limits: a workspace is created with spawn\'s limits and egress, resumes with them, and a resume may change them', async () => {
  const f = fixture();
  const egress = { allow_internet_access: false, allow_out: ['10.0.0.0/8'], deny_out: [] };
  // The registry resolves the request against the daemon's policy; the fake's sandbox runs with what was asked plus a default.
  f.live.rec.quotas = { memory_limit_mib: 512, pids_max: 64, cpu_weight: 100 };
  f.live.rec.network = true;
  f.live.rec.egress = egress;
  const w = await f.ws.create({ name: 'lim', snapshot_tag: 'base', network: true, quotas: { memory_limit_mib: 512, pids_max: 64 }, egress }, LOCAL_ADMIN);
  const created = f.spawnRequests.at(-1) as { quotas?: object; egress?: object; network?: boolean };
  assert.deepEqual(created.quotas, { memory_limit_mib: 512, pids_max: 64 });
  assert.deepEqual(created.egress, egress);
  assert.equal(created.network, true);
  assert.deepEqual(w.quotas, { memory_limit_mib: 512, pids_max: 64, cpu_weight: 100 }, 'the record keeps what the sandbox runs with');

  await f.ws.suspend('lim', null);
  await f.ws.resume('lim', null);
  const resumed = f.spawnRequests.at(-1) as { quotas?: object; egress?: object; network?: boolean };
  assert.deepEqual(resumed.quotas, { memory_limit_mib: 512, pids_max: 64, cpu_weight: 100 }, 'a plain resume keeps the limits');
  assert.deepEqual(resumed.egress, egress);
  assert.equal(resumed.network, true);

  await f.ws.suspend('lim', null);
  f.live.rec.quotas = { memory_limit_mib: 1024, pids_max: 64, cpu_weight: 100, cpu_quota: 0.5 };
  const changed = await f.ws.resume('lim', null, { quotas: { memory_limit_mib: 1024, cpu_quota: 0.5 }, network: false });
  const req = f.spawnRequests.at(-1) as { quotas?: object; network?: boolean };
  assert.deepEqual(req.quotas, { memory_limit_mib: 1024, pids_max: 64, cpu_weight: 100, cpu_quota: 0.5 }, 'changes are merged over the recorded limits');
  assert.equal(req.network, undefined);
  assert.equal(changed.network, false);
  assert.deepEqual(changed.quotas, { memory_limit_mib: 1024, pids_max: 64, cpu_weight: 100, cpu_quota: 0.5 });
  // The next plain resume keeps the changed values.
  await f.ws.suspend('lim', null);
  await f.ws.resume('lim', null);
  assert.deepEqual((f.spawnRequests.at(-1) as { quotas?: object }).quotas, { memory_limit_mib: 1024, pids_max: 64, cpu_weight: 100, cpu_quota: 0.5 });
});
