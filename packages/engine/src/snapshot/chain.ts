/** Snapshot chains: ancestry checks (the walks over many snapshots live in catalog.ts). */
import path from 'node:path';
import { ForkdError } from '@forkd/protocol';
import type { HomeLayout } from '../home/paths.js';
import { readSnapshot, type SnapshotEntry } from './store.js';

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
 * Every file a child's disk reads through its overlay: each layer's disk.qcow2 down to the image
 * (resolved from the root's relative backing path, as QEMU resolves it). The jail binds exactly these.
 */
export async function diskChainFiles(layout: HomeLayout, entry: SnapshotEntry): Promise<string[]> {
  const chain = [...(await ancestors(layout, entry)), entry];
  const root = chain[0]!;
  return [...chain.map((e) => path.join(e.dir, 'disk.qcow2')), path.resolve(root.dir, root.manifest.files.disk.backing)];
}
