import { promises as fs } from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { ForkdError } from '@forkd/protocol';
import { type HomeLayout, MANIFEST_FILE, STAGING_PREFIX, snapshotDir } from '../home/paths.js';
import { exists, fsyncPath, writeFileAtomic } from './fsx.js';

/**
 * Every new snapshot (create, branch, compact) is written in a staging directory beside its final
 * place, with owner.json so cleanup can tell an abandoned one from a live writer, and renamed into
 * place only when complete: a crash never leaves a snapshot that looks usable.
 */

/**
 * The end of a staging dir's name that names its owner (this process, and when the dir was made),
 * so cleanup can judge it with nothing inside: a dir being finalised, a trash dir, a rootfs tree.
 */
export function stagingOwnerSuffix(): string {
  return `o${process.pid}.${Date.now()}`;
}

/** The owner a staging dir's name records ({pid, started: epoch ms}), or null for a name without one. */
export function stagingOwnerFromName(name: string): { pid: number; started: number } | null {
  const m = /-o(\d+)\.(\d+)(?:-[0-9a-f]+)?$/.exec(name);
  return m ? { pid: Number(m[1]), started: Number(m[2]) } : null;
}

/** The snapshot's final directory; FORKD_E_SNAPSHOT_EXISTS if the tag is taken (checked before slow work; the commit's rename checks again). */
export async function freeSnapshotDir(layout: HomeLayout, tag: string): Promise<string> {
  const dir = snapshotDir(layout, tag);
  if (await exists(dir)) throw new ForkdError('FORKD_E_SNAPSHOT_EXISTS', `snapshot ${tag} already exists (forkd rmi ${tag} first)`, { tag });
  return dir;
}

/** Runs work in a new staging directory for tag; the directory is removed if work throws. */
export async function inStaging<T>(layout: HomeLayout, tag: string, work: (staging: string) => Promise<T>): Promise<T> {
  const staging = await createStaging(layout, tag);
  try {
    return await work(staging);
  } catch (e) {
    await fs.rm(staging, { recursive: true, force: true });
    throw e;
  }
}

async function createStaging(layout: HomeLayout, tag: string): Promise<string> {
  await ensurePrivateDir(layout.snapshots);
  const staging = path.join(layout.snapshots, `${STAGING_PREFIX}${tag}-${stagingOwnerSuffix()}-${crypto.randomBytes(4).toString('hex')}`);
  await fs.mkdir(staging, { mode: 0o700 });
  await fs.writeFile(path.join(staging, 'owner.json'), JSON.stringify({ pid: process.pid, started: Date.now() }), { flag: 'wx', mode: 0o600 });
  return staging;
}

/**
 * Makes a finished staging directory the snapshot: drops owner.json, writes the manifest
 * atomically, renames the directory into place (a tag taken meanwhile is FORKD_E_SNAPSHOT_EXISTS)
 * and syncs the parent directory so the rename survives a crash.
 */
export async function commitStaging(staging: string, finalDir: string, manifest: { tag: string }): Promise<void> {
  await fs.rm(path.join(staging, 'owner.json'), { force: true });
  await writeFileAtomic(path.join(staging, MANIFEST_FILE), JSON.stringify(manifest, null, 2));
  try {
    await fs.rename(staging, finalDir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOTEMPTY' || code === 'EEXIST') throw new ForkdError('FORKD_E_SNAPSHOT_EXISTS', `snapshot ${manifest.tag} was created concurrently`, { tag: manifest.tag });
    throw e;
  }
  await fsyncPath(path.dirname(finalDir));
}

/**
 * The snapshot root holds guest RAM images: only the daemon's user may list or read it (VMs get
 * their files through their mount view). An existing root with a looser mode is tightened.
 */
export async function ensurePrivateDir(dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const st = await fs.lstat(dir);
  if (!st.isDirectory()) throw new ForkdError('FORKD_E_RUN_DIR_UNSAFE', `${dir} is not a directory (a symlink?)`, { dir });
  if ((st.mode & 0o077) !== 0 && st.uid === process.geteuid?.()) await fs.chmod(dir, st.mode & 0o700);
}
