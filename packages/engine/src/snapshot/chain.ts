/** Snapshot chains: ancestry checks and compaction of a layer into a flat snapshot. */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ForkdError, assertValidTag } from '@forkd/protocol';
import { type HomeLayout, snapshotDir } from '../home/paths.js';
import { runTool } from '../qemu/tools.js';
import { createStaging } from '../util/staging.js';
import { type ProgressFn, noProgress } from '../progress.js';
import { allocatedBytes, exists, fsyncPath, sha256File, writeFileAtomic } from '../util/fsx.js';
import { nowMs, since } from '../sandbox/timing.js';
import { MANIFEST_FILE, MANIFEST_VERSION, type SnapshotManifest } from './manifest.js';
import { readSnapshot, type SnapshotEntry } from './store.js';
import { memoryFileFor } from './memory.js';

/** Root first. Throws FORKD_E_SNAPSHOT_INCOMPATIBLE for a missing ancestor or a cycle. */
export async function ancestors(layout: HomeLayout, entry: SnapshotEntry): Promise<SnapshotEntry[]> {
  const out: SnapshotEntry[] = [];
  const seen = new Set([entry.tag]);
  let child = entry;
  for (let p = entry.manifest.parent_tag; p !== null; ) {
    if (seen.has(p)) throw new ForkdError('FORKD_E_SNAPSHOT_INCOMPATIBLE', `the chain of snapshot ${entry.tag} has a cycle at ${p}`, { tag: entry.tag, cycle_at: p });
    seen.add(p);
    const parentTag: string = p;
    const parent = await readSnapshot(layout, parentTag).catch(() => {
      throw new ForkdError('FORKD_E_SNAPSHOT_INCOMPATIBLE', `snapshot ${entry.tag} depends on ${parentTag}, which is missing or unreadable`, { tag: entry.tag, missing: parentTag });
    });
    const want = child.manifest.parent_vmstate_sha256;
    if (want !== undefined && want !== parent.manifest.files.vmstate.sha256) {
      throw new ForkdError('FORKD_E_SNAPSHOT_INCOMPATIBLE', `snapshot ${child.tag} was made on another instance of ${parentTag} (it was deleted and re-created since): recreate ${child.tag}`, { tag: child.tag, parent: parentTag });
    }
    out.unshift(parent);
    child = parent;
    p = parent.manifest.parent_tag;
  }
  return out;
}

/**
 * Flattens a snapshot (a chain head) into a new self-contained one: its whole memory image, its
 * device state, and its disk chain merged into one layer over the base image. Equivalent state,
 * no parent.
 */
export async function compactSnapshot(layout: HomeLayout, from: string, to: string, onProgress: ProgressFn = noProgress): Promise<SnapshotEntry> {
  assertValidTag(to);
  const src = await readSnapshot(layout, from);
  await ancestors(layout, src);
  const finalDir = snapshotDir(layout, to);
  if (await exists(finalDir)) throw new ForkdError('FORKD_E_SNAPSHOT_EXISTS', `snapshot ${to} already exists`, { tag: to });
  const t0 = nowMs();
  const staging = await createStaging(layout, to);
  try {
    const m = src.manifest;
    onProgress({ phase: 'compact', message: 'copying the whole memory image' });
    await runTool('cp', ['--sparse=always', await memoryFileFor(layout, src), path.join(staging, 'memory.bin')]);
    await fs.copyFile(path.join(src.dir, 'vmstate'), path.join(staging, 'vmstate'));
    onProgress({ phase: 'compact', message: 'merging the disk chain' });
    // Siblings of the final dir: a backing path relative to staging resolves the same after the rename.
    const backing = path.relative(staging, m.image.path);
    await runTool('qemu-img', ['convert', '-q', '-O', 'qcow2', '-o', 'cluster_size=65536', '-B', backing, '-F', 'raw', path.join(src.dir, 'disk.qcow2'), path.join(staging, 'disk.qcow2')], { cwd: staging, timeoutMs: 600_000 });
    for (const f of ['memory.bin', 'vmstate', 'disk.qcow2']) await fsyncPath(path.join(staging, f));
    await fs.chmod(path.join(staging, 'disk.qcow2'), 0o444);
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
    await fs.rm(path.join(staging, 'owner.json'), { force: true });
    await writeFileAtomic(path.join(staging, MANIFEST_FILE), JSON.stringify(manifest, null, 2));
    try {
      await fs.rename(staging, finalDir);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST') throw new ForkdError('FORKD_E_SNAPSHOT_EXISTS', `snapshot ${to} was created concurrently`, { tag: to });
      throw e;
    }
    await fsyncPath(layout.snapshots);
    onProgress({ phase: 'done', message: `compacted ${from} into ${to}`, fraction: 1 });
    return { tag: to, dir: finalDir, manifest };
  } catch (e) {
    await fs.rm(staging, { recursive: true, force: true });
    throw e;
  }
}
