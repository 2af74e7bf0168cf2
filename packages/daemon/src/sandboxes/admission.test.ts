/** The admission's arithmetic, with a fake host (no VM, no /proc). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ForkdError } from '@forkd/protocol';
import { CHILD_START_BYTES, DISK_RESERVE_BYTES } from './admission.js';
import { testAdmission, type FakeHostState } from '../testing/admission.js';

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;
const code = (c: string) => (e: unknown) => e instanceof ForkdError && e.code === c;
const roomy = (): FakeHostState => ({ memAvailableBytes: 64 * GIB, diskFreeBytes: 500 * GIB, storeBytes: 0, liveSandboxes: 0 });

test('VMs of every kind count against max-sandboxes; more than can ever run is a 400, not now a 503', async () => {
  const host = roomy();
  const a = testAdmission({ maxSandboxes: 4, maxSpawnInFlight: 4 }, host);
  await assert.rejects(a.admit({ what: 'spawn', spawns: 5 }), code('FORKD_E_INVALID_ARGUMENT'));
  host.liveSandboxes = 2;
  const diff = await a.admit({ what: 'diff', vms: 1, capture: true });
  await assert.rejects(a.admit({ what: 'spawn', spawns: 2 }), code('FORKD_E_CAPACITY'));
  const one = await a.admit({ what: 'spawn', spawns: 1 });
  await assert.rejects(a.admit({ what: 'branch', vms: 1, capture: true }), code('FORKD_E_CAPACITY'));
  diff.release();
  diff.release(); // twice is once
  one.release();
  (await a.admit({ what: 'spawn', spawns: 2 })).release();
  assert.throws(() => a.assertSatisfiable(5), code('FORKD_E_INVALID_ARGUMENT'));
});

test('captures are bounded; a refused admission holds nothing', async () => {
  const a = testAdmission({ maxConcurrentCaptures: 2 }, roomy());
  const held = [await a.admit({ what: 'branch', capture: true }), await a.admit({ what: 'compact', capture: true })];
  await assert.rejects(a.admit({ what: 'diff', vms: 1, capture: true }), (e) => code('FORKD_E_CAPACITY')(e) && /2 branches/.test((e as Error).message));
  // The refused diff's VM was not kept: max-sandboxes 1 still has room for one spawn.
  held.forEach((t) => t.release());
  const b = testAdmission({ maxSandboxes: 1, maxConcurrentCaptures: 0 }, roomy());
  await assert.rejects(b.admit({ what: 'diff', vms: 1, capture: true }), code('FORKD_E_CAPACITY'));
  (await b.admit({ what: 'spawn', spawns: 1 })).release();
});

test('memory: spawns need CHILD_START_BYTES each plus what the job asks; too little is a 503', async () => {
  const host = { ...roomy(), memAvailableBytes: 3 * CHILD_START_BYTES };
  const a = testAdmission({}, host);
  (await a.admit({ what: 'spawn', spawns: 3 })).release();
  await assert.rejects(a.admit({ what: 'spawn', spawns: 4 }), (e) => code('FORKD_E_CAPACITY')(e) && (e as ForkdError).status === 503);
  await assert.rejects(a.admit({ what: 'snapshot creation', vms: 1, memBytes: 4 * CHILD_START_BYTES }), code('FORKD_E_CAPACITY'));
  // A refusal after the counts were taken gives them back.
  const b = testAdmission({ maxSandboxes: 1 }, { ...host, memAvailableBytes: 0 });
  await assert.rejects(b.admit({ what: 'spawn', spawns: 1 }), code('FORKD_E_CAPACITY'));
  host.memAvailableBytes = GIB;
  const c = testAdmission({ maxSandboxes: 1 }, host);
  (await c.admit({ what: 'spawn', spawns: 1 })).release();
});

test('disk: a write must leave the reserve free, counting writes in flight; short is a 507', async () => {
  const host = { ...roomy(), diskFreeBytes: DISK_RESERVE_BYTES + 1000 * MIB };
  const a = testAdmission({ maxConcurrentCaptures: 4 }, host);
  const first = await a.admit({ what: 'branch', capture: true, diskBytes: 600 * MIB });
  await assert.rejects(a.admit({ what: 'branch', capture: true, diskBytes: 600 * MIB }), (e) => code('FORKD_E_INSUFFICIENT_STORAGE')(e) && (e as ForkdError).status === 507);
  first.release();
  (await a.admit({ what: 'branch', capture: true, diskBytes: 1000 * MIB })).release();
  await assert.rejects(a.admit({ what: 'branch', capture: true, diskBytes: 1000 * MIB + 1 }), code('FORKD_E_INSUFFICIENT_STORAGE'));
});

test('store cap: what the store holds plus writes in flight plus this write must stay under the cap', async () => {
  const host = { ...roomy(), storeBytes: 700 * MIB };
  const a = testAdmission({ storeMaxBytes: GIB }, host);
  const w = await a.admit({ what: 'compact', capture: true, diskBytes: 300 * MIB });
  await assert.rejects(a.admit({ what: 'branch', capture: true, diskBytes: 100 * MIB }), (e) => code('FORKD_E_INSUFFICIENT_STORAGE')(e) && /snapshot-store-max-gib/.test((e as Error).message));
  w.release();
  (await a.admit({ what: 'branch', capture: true, diskBytes: 324 * MIB })).release();
  await assert.rejects(a.admit({ what: 'branch', capture: true, diskBytes: 325 * MIB }), code('FORKD_E_INSUFFICIENT_STORAGE'));
  // Jobs that write nothing are not refused by a full store.
  host.storeBytes = 2 * GIB;
  (await a.admit({ what: 'spawn', spawns: 1 })).release();
});

test('warm-pool children count as live VMs but give way: a spawn past the cap reclaims them, and the pool fills only into room', async () => {
  const host = roomy();
  let pooled = 3;
  const asked: Array<[number, string | undefined]> = [];
  const a = testAdmission({ maxSandboxes: 4 }, host, (n, tag) => {
    asked.push([n, tag]);
    const freed = Math.min(n, pooled);
    pooled -= freed;
    host.liveSandboxes -= freed;
    return freed;
  });
  host.liveSandboxes = 1 + pooled; // one sandbox and three pooled children
  assert.equal(a.hasRoom(1), false);
  const t = await a.admit({ what: 'spawn', spawns: 2, tag: 'py' });
  assert.deepEqual(asked, [[2, 'py']]);
  assert.equal(pooled, 1);
  assert.equal(a.hasRoom(1), false, 'the two starting children hold the room');
  t.release();
  // Nothing to reclaim left beyond the cap: refused as before.
  host.liveSandboxes = 4;
  pooled = 0;
  await assert.rejects(a.admit({ what: 'spawn', spawns: 1 }), code('FORKD_E_CAPACITY'));
});
