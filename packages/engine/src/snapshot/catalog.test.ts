import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ForkdError } from '@forkd/protocol';
import { homeLayout } from '../home/paths.js';
import { SnapshotCatalog } from './catalog.js';
import { makeSnapshot, sampleManifest } from '../testing/snapshots.js';

async function withStore(fn: (catalog: SnapshotCatalog, root: string) => Promise<void>): Promise<void> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'forkd-catalog-'));
  try {
    await fn(new SnapshotCatalog(homeLayout(root)), root);
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
}

const layer = (tag: string, parent: string) => ({ ...sampleManifest(tag), parent_tag: parent });
const tags = (nodes: { entry: { tag: string }; children: unknown[] }[]): unknown => nodes.map((n) => [n.entry.tag, tags(n.children as typeof nodes)]);

test('catalog: dependents leaves first, direct children, the tree, removal refused then cascaded', async () => {
  await withStore(async (catalog, root) => {
    await makeSnapshot(root, 'base', sampleManifest('base'));
    await makeSnapshot(root, 'l1', layer('l1', 'base'));
    await makeSnapshot(root, 'l2', layer('l2', 'l1'));
    await makeSnapshot(root, 'orphan', layer('orphan', 'gone'));
    assert.deepEqual(await catalog.dependents('base'), ['l2', 'l1']);
    assert.deepEqual(await catalog.ancestors('l2'), ['base', 'l1']);
    assert.deepEqual((await catalog.detail('l1')).children, ['l2']);
    await assert.rejects(catalog.ancestors('orphan'), (e: unknown) => e instanceof ForkdError && e.code === 'FORKD_E_SNAPSHOT_INCOMPATIBLE');
    // A layer whose parent is gone is a root of the forest, not lost.
    assert.deepEqual(tags(await catalog.tree()), [['base', [['l1', [['l2', []]]]]], ['orphan', []]]);
    await assert.rejects(catalog.remove('base'), (e: unknown) => e instanceof ForkdError && e.code === 'FORKD_E_HAS_DEPENDENTS');
    assert.deepEqual(await catalog.remove('base', { cascade: true }), ['l2', 'l1', 'base']);
    assert.deepEqual((await catalog.list()).map((e) => e.tag), ['orphan']);
  });
});

test('catalog: manifests that point at each other in a cycle end every walk', async () => {
  await withStore(async (catalog, root) => {
    await makeSnapshot(root, 'a', layer('a', 'b'));
    await makeSnapshot(root, 'b', layer('b', 'a'));
    await makeSnapshot(root, 'c', layer('c', 'b'));
    assert.deepEqual((await catalog.list()).map((e) => e.tag), ['a', 'b', 'c']);
    assert.deepEqual(await catalog.dependents('a'), ['c', 'b']);
    await assert.rejects(catalog.ancestors('c'), (e: unknown) => e instanceof ForkdError && e.code === 'FORKD_E_SNAPSHOT_INCOMPATIBLE' && /cycle/.test(e.message));
    // No root leads into the cycle; its members still appear, each once.
    assert.deepEqual(tags(await catalog.tree()), [['a', [['b', [['c', []]]]]]]);
    await assert.rejects(catalog.remove('a'), (e: unknown) => e instanceof ForkdError && e.code === 'FORKD_E_HAS_DEPENDENTS');
    assert.deepEqual(await catalog.remove('a', { cascade: true }), ['c', 'b', 'a']);
    assert.deepEqual(await catalog.list(), []);
  });
});
