import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { ForkdError } from '@forkd/protocol';
import { homeLayout } from '../home/paths.js';
import { listSnapshots, readSnapshot, removeSnapshot } from './store.js';
import { SnapshotManifestSchema, requiredFiles } from './manifest.js';
import { makeSnapshot, sampleManifest } from '../testing/snapshots.js';

test('manifest schema: a valid manifest round-trips; any dropped field is rejected', () => {
  const m = sampleManifest('t');
  assert.deepEqual(SnapshotManifestSchema.parse(JSON.parse(JSON.stringify(m))), m);
  fc.assert(fc.property(fc.constantFrom(...Object.keys(m)), (key) => {
    const copy: Record<string, unknown> = { ...m };
    delete copy[key];
    assert.equal(SnapshotManifestSchema.safeParse(copy).success, false);
  }));
  assert.equal(SnapshotManifestSchema.safeParse({ ...m, format_version: 99 }).success, false);
  // Version 1 (flat snapshots written before layers existed) is still read.
  assert.equal(SnapshotManifestSchema.safeParse({ ...m, format_version: 1 }).success, true);
  // A layer names its own memory files, and a store needs them to list it.
  const layer = { ...m, parent_tag: 'p', files: { ...m.files, memory: { ...m.files.memory, name: 'memory.layer' }, pages: { name: 'memory.pages', changed_pages: 3, page_size: 4096 } } };
  assert.equal(SnapshotManifestSchema.safeParse(layer).success, true);
  assert.deepEqual(requiredFiles(SnapshotManifestSchema.parse(layer)), ['memory.layer', 'memory.pages', 'vmstate', 'disk.qcow2']);
  assert.equal(SnapshotManifestSchema.safeParse({ ...m, accel: 'hvf' }).success, false);
});

test('store: only complete snapshots with valid manifests are listed', async () => {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'forkd-store-'));
  try {
    const layout = homeLayout(root);
    await makeSnapshot(root, 'good', sampleManifest('good'));
    await makeSnapshot(root, 'garbage', '{not json');
    await makeSnapshot(root, '.staging-half-1234', sampleManifest('half'));
    await makeSnapshot(root, 'future', { ...sampleManifest('future'), format_version: 99 });
    assert.deepEqual((await listSnapshots(layout)).map((s) => s.tag), ['good']);
    await assert.rejects(readSnapshot(layout, 'garbage'), (e: unknown) => e instanceof ForkdError && e.code === 'FORKD_E_SNAPSHOT_INCOMPATIBLE');
    await assert.rejects(readSnapshot(layout, 'missing'), (e: unknown) => e instanceof ForkdError && e.code === 'FORKD_E_SNAPSHOT_NOT_FOUND');
    await assert.rejects(readSnapshot(layout, '../etc'), (e: unknown) => e instanceof ForkdError && e.code === 'FORKD_E_INVALID_TAG');
    await fs.rm(path.join(root, 'snapshots', 'good', 'vmstate'));
    await assert.rejects(readSnapshot(layout, 'good'), (e: unknown) => e instanceof ForkdError && e.code === 'FORKD_E_SNAPSHOT_INCOMPATIBLE');
    await removeSnapshot(layout, 'good');
    await assert.rejects(removeSnapshot(layout, 'good'), (e: unknown) => e instanceof ForkdError && e.code === 'FORKD_E_SNAPSHOT_NOT_FOUND');
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
});
