import os from 'node:os';
import path from 'node:path';
import { assertValidTag } from '@forkd/protocol';

/**
 * Where forkd keeps durable data. Tags are validated before any join so a tag can never
 * name a path outside the store.
 */
export function forkdHome(): string {
  if (process.env.FORKD_HOME) return path.resolve(process.env.FORKD_HOME);
  const xdg = process.env.XDG_DATA_HOME;
  if (xdg) return path.join(xdg, 'forkd');
  return path.join(os.homedir(), '.local', 'share', 'forkd');
}

export interface HomeLayout {
  root: string;
  images: string;
  snapshots: string;
  cache: string;
  debCache: string;
  rootfsCache: string;
  accelCache: string;
}

export function homeLayout(root = forkdHome(), snapshotRoot?: string): HomeLayout {
  return {
    root,
    images: path.join(root, 'images'),
    snapshots: snapshotRoot ? path.resolve(snapshotRoot) : path.join(root, 'snapshots'),
    cache: path.join(root, 'cache'),
    debCache: path.join(root, 'cache', 'debs'),
    rootfsCache: path.join(root, 'cache', 'rootfs'),
    accelCache: path.join(root, 'cache', 'accel.json'),
  };
}

/** Each snapshot directory's manifest (snapshot/manifest.ts is its shape). */
export const MANIFEST_FILE = 'snapshot.json';

export function snapshotDir(layout: HomeLayout, tag: string): string {
  return path.join(layout.snapshots, assertValidTag(tag));
}

const IMAGE_KEY = /^[0-9a-f]{64}$/;
export function imageDir(layout: HomeLayout, key: string): string {
  if (!IMAGE_KEY.test(key)) throw new Error(`bad image key ${key}`);
  return path.join(layout.images, key);
}

/** Staging directories start with a dot so listings never mistake them for finished entries. */
export const STAGING_PREFIX = '.staging-';
