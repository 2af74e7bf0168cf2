/**
 * `forkd image from-oci SOURCE`: SOURCE is an OCI layout directory, a `docker save` archive (a
 * local user's own paths: the CLI only), or a registry reference.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import type { HomeLayout } from '../home/paths.js';
import { STAGING_PREFIX } from '../home/paths.js';
import { stagingOwnerSuffix } from '../util/staging.js';
import type { RegistryClientOptions } from '../oci/registry.js';
import type { ImageInfo } from '../image/build.js';
import { imageFromOci, type FromOciOptions } from './build.js';
import { dockerArchiveSource, layoutDirSource, registrySource } from './source.js';

export { IMAGE_NAME, runtimeConfigOf, type ImageRuntimeConfig } from './build.js';
export { RUNTIME_DIR } from './runtime.js';

export type OciSourceKind = 'layout' | 'archive' | 'registry';

export async function buildImageFromOci(layout: HomeLayout, source: string, o: FromOciOptions & { registry?: RegistryClientOptions; localPaths?: boolean }): Promise<ImageInfo & { cached: boolean; source_kind: OciSourceKind }> {
  const st = o.localPaths === false ? null : await fs.stat(source).catch(() => null);
  if (st?.isDirectory()) return { ...(await imageFromOci(layout, layoutDirSource(path.resolve(source)), null, o)), source_kind: 'layout' };
  if (st?.isFile()) {
    await fs.mkdir(layout.images, { recursive: true });
    const staging = path.join(layout.images, `${STAGING_PREFIX}archive-${stagingOwnerSuffix()}-${crypto.randomBytes(4).toString('hex')}`);
    await fs.mkdir(staging, { mode: 0o700 });
    try {
      o.onProgress?.({ phase: 'image', message: `reading ${source}` });
      return { ...(await imageFromOci(layout, await dockerArchiveSource(path.resolve(source), staging), null, o)), source_kind: 'archive' };
    } finally {
      await fs.rm(staging, { recursive: true, force: true });
    }
  }
  return { ...(await imageFromOci(layout, registrySource(source, o.registry ?? {}), null, o)), source_kind: 'registry' };
}
