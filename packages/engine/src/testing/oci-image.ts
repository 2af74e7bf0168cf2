/**
 * OCI images made by tests from files they write: a tiny ustar writer (files, directories,
 * symlinks, hard links, whiteouts are just names) and an OCI layout / registry push of them.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { sha256Digest } from '../oci/digest.js';
import { RegistryClient } from '../oci/registry.js';

export type TestEntry =
  | { name: string; type: 'file'; data: Buffer | string; mode?: number; uid?: number; gid?: number }
  | { name: string; type: 'dir'; mode?: number }
  | { name: string; type: 'symlink' | 'hardlink'; target: string };

function header(name: string, flag: string, size: number, mode: number, link = '', uid = 0, gid = 0): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write(mode.toString(8).padStart(7, '0') + '\0', 100, 'ascii');
  h.write(uid.toString(8).padStart(7, '0') + '\0', 108, 'ascii');
  h.write(gid.toString(8).padStart(7, '0') + '\0', 116, 'ascii');
  h.write(size.toString(8).padStart(11, '0') + '\0', 124, 'ascii');
  h.write('00000000000\0', 136, 'ascii');
  h.write('        ', 148, 'ascii');
  h.write(flag, 156, 'ascii');
  h.write(link, 157, 100, 'utf8');
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
  return h;
}

export function tarOf(entries: TestEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    if (e.type === 'file') {
      const d = Buffer.from(e.data);
      parts.push(header(e.name, '0', d.length, e.mode ?? 0o644, '', e.uid ?? 0, e.gid ?? 0), d, Buffer.alloc((512 - (d.length % 512)) % 512));
    } else if (e.type === 'dir') parts.push(header(e.name, '5', 0, e.mode ?? 0o755));
    else parts.push(header(e.name, e.type === 'symlink' ? '2' : '1', 0, 0o777, e.target));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

export interface TestImage {
  manifest: Buffer;
  blobs: Map<string, Buffer>;
}

/** A manifest over gzip layers and a config with Env and WorkingDir. */
export function imageOf(layers: TestEntry[][], config: { Env?: string[]; WorkingDir?: string; User?: string }, platform = { os: 'linux', architecture: 'amd64' }): TestImage {
  const blobs = new Map<string, Buffer>();
  const diffIds: string[] = [];
  const layerDescs = layers.map((entries) => {
    const tar = tarOf(entries);
    diffIds.push(sha256Digest(tar));
    const gz = gzipSync(tar);
    const digest = sha256Digest(gz);
    blobs.set(digest, gz);
    return { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest, size: gz.length };
  });
  const cfg = Buffer.from(JSON.stringify({ ...platform, config, rootfs: { type: 'layers', diff_ids: diffIds } }));
  blobs.set(sha256Digest(cfg), cfg);
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256Digest(cfg), size: cfg.length }, layers: layerDescs }));
  return { manifest, blobs };
}

export async function writeLayoutDir(dir: string, img: TestImage): Promise<void> {
  await fs.mkdir(path.join(dir, 'blobs', 'sha256'), { recursive: true });
  for (const [d, b] of [...img.blobs, [sha256Digest(img.manifest), img.manifest] as const]) await fs.writeFile(path.join(dir, 'blobs', 'sha256', d.slice(7)), b);
  await fs.writeFile(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  await fs.writeFile(path.join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256Digest(img.manifest), size: img.manifest.length, platform: { os: 'linux', architecture: 'amd64' } }] }));
}

export async function pushImage(registryHost: string, repo: string, tag: string, img: TestImage, tmp: string): Promise<void> {
  const c = new RegistryClient(registryHost);
  for (const [d, b] of img.blobs) {
    const f = path.join(tmp, d.slice(7));
    await fs.writeFile(f, b);
    await c.pushBlob(repo, d, b.length, f);
  }
  await c.putManifest(repo, tag, img.manifest, 'application/vnd.oci.image.manifest.v1+json');
}
