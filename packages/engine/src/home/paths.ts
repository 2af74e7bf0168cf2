/**
 * The layout of forkd's home (resolved by protocol's forkdHome). Tags are validated before any
 * join so a tag can never name a path outside the store.
 */
import path from 'node:path';
import { assertValidTag, forkdHome } from '@forkd/protocol';

export { forkdHome };

export interface HomeLayout {
  root: string;
  images: string;
  snapshots: string;
  cache: string;
  debCache: string;
  rootfsCache: string;
  /** The agent runtime OCI images get (/.forkd), built once per agent and Debian root. */
  runtimeCache: string;
  accelCache: string;
  /** Children's disk overlays: on the home's disk, not the run dir's tmpfs (security review I3). */
  overlays: string;
}

export function homeLayout(root = forkdHome(), snapshotRoot?: string): HomeLayout {
  return {
    root,
    images: path.join(root, 'images'),
    snapshots: snapshotRoot ? path.resolve(snapshotRoot) : path.join(root, 'snapshots'),
    cache: path.join(root, 'cache'),
    debCache: path.join(root, 'cache', 'debs'),
    rootfsCache: path.join(root, 'cache', 'rootfs'),
    runtimeCache: path.join(root, 'cache', 'oci-runtime'),
    accelCache: path.join(root, 'cache', 'accel.json'),
    overlays: path.join(root, 'overlays'),
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
