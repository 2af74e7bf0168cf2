/** Compaction: a layered snapshot flattened into a new self-contained one. */
import { sealForJail } from '../qemu/jail.js';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { assertValidTag } from '@forkd/protocol';
import type { HomeLayout } from '../home/paths.js';
import { runTool } from '../qemu/tools.js';
import { commitStaging, freeSnapshotDir, inStaging } from '../util/staging.js';
import { type ProgressFn, noProgress } from '../progress.js';
import { allocatedBytes, fsyncPath, sha256File } from '../util/fsx.js';
import { nowMs, since } from '../util/timing.js';
import { MANIFEST_VERSION, type SnapshotManifest } from './manifest.js';
import { readSnapshot, type SnapshotEntry } from './store.js';
import { ancestors } from './chain.js';
import { memoryFileFor } from './memory.js';

/**
 * Flattens a snapshot (a chain head) into a new self-contained one: its whole memory image, its
 * device state, and its disk chain merged into one layer over the base image. Equivalent state,
 * no parent.
 */
export async function compactSnapshot(layout: HomeLayout, from: string, to: string, onProgress: ProgressFn = noProgress): Promise<SnapshotEntry> {
  assertValidTag(to);
  const src = await readSnapshot(layout, from);
  await ancestors(layout, src);
  const finalDir = await freeSnapshotDir(layout, to);
  const t0 = nowMs();
  return inStaging(layout, to, async (staging) => {
    const m = src.manifest;
    onProgress({ phase: 'compact', message: 'copying the whole memory image' });
    await runTool('cp', ['--sparse=always', await memoryFileFor(layout, src), path.join(staging, 'memory.bin')]);
    await fs.copyFile(path.join(src.dir, 'vmstate'), path.join(staging, 'vmstate'));
    onProgress({ phase: 'compact', message: 'merging the disk chain' });
    // Siblings of the final dir: a backing path relative to staging resolves the same after the rename.
    const backing = path.relative(staging, m.image.path);
    await runTool('qemu-img', ['convert', '-q', '-O', 'qcow2', '-o', 'cluster_size=65536', '-B', backing, '-F', 'raw', path.join(src.dir, 'disk.qcow2'), path.join(staging, 'disk.qcow2')], { cwd: staging, timeoutMs: 600_000 });
    for (const f of ['memory.bin', 'vmstate', 'disk.qcow2']) await fsyncPath(path.join(staging, f));
    await sealForJail(path.join(staging, 'memory.bin'));
    await sealForJail(path.join(staging, 'vmstate'), 0o600); // read by the daemon's fd helper only
    await sealForJail(path.join(staging, 'disk.qcow2'), 0o440);
    const manifest: SnapshotManifest = {
      ...m,
      format_version: MANIFEST_VERSION,
      tag: to,
      created_at: new Date().toISOString(),
      origin: { kind: 'compact', source: from, ...(m.origin.recipe ? { recipe: m.origin.recipe } : {}) },
      parent_tag: null,
      parent_vmstate_sha256: undefined,
      files: {
        memory: { name: 'memory.bin', logical_bytes: m.files.memory.logical_bytes, physical_bytes: await allocatedBytes(path.join(staging, 'memory.bin')) },
        vmstate: { ...m.files.vmstate, sha256: await sha256File(path.join(staging, 'vmstate')) },
        disk: { name: 'disk.qcow2', backing, physical_bytes: await allocatedBytes(path.join(staging, 'disk.qcow2')) },
      },
      timings: { compact_ms: since(t0) },
    };
    await commitStaging(staging, finalDir, manifest);
    onProgress({ phase: 'done', message: `compacted ${from} into ${to}`, fraction: 1 });
    return { tag: to, dir: finalDir, manifest };
  });
}
