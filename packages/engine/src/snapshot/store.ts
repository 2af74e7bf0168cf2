import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ForkdError } from '@forkd/protocol';
import { type HomeLayout, MANIFEST_FILE, snapshotDir, STAGING_PREFIX } from '../home/paths.js';
import { type SnapshotManifest, SnapshotManifestSchema, requiredFiles } from './manifest.js';
import { exists } from '../util/fsx.js';
import { stagingOwnerSuffix } from '../util/staging.js';

export interface SnapshotEntry {
  tag: string;
  dir: string;
  manifest: SnapshotManifest;
}

/** Reads and validates a snapshot's manifest. A directory without a valid one is not a snapshot. */
export async function readSnapshot(layout: HomeLayout, tag: string): Promise<SnapshotEntry> {
  const dir = snapshotDir(layout, tag);
  let text: string;
  try {
    text = await fs.readFile(path.join(dir, MANIFEST_FILE), 'utf8');
  } catch {
    throw new ForkdError('FORKD_E_SNAPSHOT_NOT_FOUND', `no snapshot tagged ${JSON.stringify(tag)}`, { tag });
  }
  const parsed = SnapshotManifestSchema.safeParse(safeJson(text));
  if (!parsed.success) {
    throw new ForkdError('FORKD_E_SNAPSHOT_INCOMPATIBLE', `snapshot ${tag} has an unreadable or unsupported manifest (format): ${parsed.error.issues[0]?.message ?? ''}`, { tag });
  }
  for (const f of requiredFiles(parsed.data)) {
    if (!(await exists(path.join(dir, f)))) throw new ForkdError('FORKD_E_SNAPSHOT_INCOMPATIBLE', `snapshot ${tag} is missing ${f}`, { tag });
  }
  return { tag, dir, manifest: parsed.data };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

export async function listSnapshots(layout: HomeLayout): Promise<SnapshotEntry[]> {
  let names: string[] = [];
  try {
    names = await fs.readdir(layout.snapshots);
  } catch {
    return [];
  }
  const out: SnapshotEntry[] = [];
  for (const n of names.sort()) {
    if (n.startsWith('.')) continue;
    try {
      out.push(await readSnapshot(layout, n));
    } catch {
      // Not a finished snapshot (or an invalid name): never listed as usable.
    }
  }
  return out;
}

/** Removes a snapshot: rename out of the way first so a half-deleted one is never visible. */
export async function removeSnapshot(layout: HomeLayout, tag: string): Promise<void> {
  const dir = snapshotDir(layout, tag);
  if (!(await exists(dir))) throw new ForkdError('FORKD_E_SNAPSHOT_NOT_FOUND', `no snapshot tagged ${JSON.stringify(tag)}`, { tag });
  const trash = path.join(layout.snapshots, `${STAGING_PREFIX}rm-${tag}-${stagingOwnerSuffix()}`);
  await fs.rename(dir, trash);
  await fs.rm(trash, { recursive: true, force: true });
}
