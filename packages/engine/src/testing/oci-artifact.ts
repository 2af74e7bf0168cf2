/**
 * A small, real forkd snapshot artifact built without a VM (tests of packs and pulls that need
 * no guest): a 4 MiB "guest" with a few pages of data, an 8 MiB root filesystem, a real qcow2
 * disk layer and a device-state file, compressed by the same code a push uses. Mutating its
 * manifest, config or blobs gives the hostile corpus.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { FORKD_VERSION } from '@forkd/protocol';
import { runTool } from '../qemu/tools.js';
import { machineSignature } from '../snapshot/machine.js';
import { compressFile } from '../oci/codec.js';
import { sha256Digest } from '../oci/digest.js';
import { ANNOTATION, MEDIA, OCI_FORMAT_VERSION, type ArtifactManifest, type HostCompat, type SnapshotConfig } from '../oci/format.js';
import type { ExportedLink } from '../oci/export.js';

export const SYNTH_HOST: HostCompat = { qemuVersion: '7.2.0', accel: 'tcg', kernelSha256: 'k'.repeat(64), initramfsSha256: 'i'.repeat(64), agentVersion: FORKD_VERSION, kernelPath: '/boot/vmlinuz-test' };
export const SYNTH_MEM_MIB = 16;
export const SYNTH_DISK_MIB = 32;

export interface SynthFiles {
  dir: string;
  config: SnapshotConfig;
  /** name -> path of the uncompressed file. */
  files: Record<string, string>;
}

export async function synthFiles(dir: string, tag = 'synth'): Promise<SynthFiles> {
  await fs.mkdir(dir, { recursive: true });
  const mem = Buffer.alloc(SYNTH_MEM_MIB * 1024 * 1024);
  for (let p = 0; p < 64; p++) crypto.randomFillSync(mem, p * 4096 * 8, 4096); // 64 pages of data, the rest holes
  const files: Record<string, string> = {};
  const w = async (name: string, data: Buffer) => {
    files[name] = path.join(dir, name);
    await fs.writeFile(files[name]!, data);
  };
  await w('memory.bin', mem);
  const vmstate = crypto.randomBytes(3000);
  await w('vmstate', vmstate);
  const rootfs = Buffer.alloc(SYNTH_DISK_MIB * 1024 * 1024);
  crypto.randomFillSync(rootfs, 0, 256 * 1024);
  await w('rootfs.ext4', rootfs);
  files['disk.qcow2'] = path.join(dir, 'disk.qcow2');
  await runTool('qemu-img', ['create', '-q', '-u', '-f', 'qcow2', '-b', '/nonexistent/elsewhere.raw', '-F', 'raw', files['disk.qcow2'], `${SYNTH_DISK_MIB}M`]);
  const key = crypto.createHash('sha256').update(`synth-image-${dir}`).digest('hex');
  const config: SnapshotConfig = {
    forkd_oci_format: OCI_FORMAT_VERSION,
    snapshot: {
      format_version: 2,
      tag,
      created_at: new Date(0).toISOString(),
      origin: { kind: 'recipe', recipe: 'synth' },
      parent_tag: null,
      language: 'python',
      qemu: { version: SYNTH_HOST.qemuVersion, binary: 'qemu-system-x86_64' },
      accel: 'tcg',
      machine: { mem_mib: SYNTH_MEM_MIB, vcpus: 1, signature: machineSignature('tcg', SYNTH_MEM_MIB, 1) },
      kernel: { path: 'vmlinuz', version: '6.1', sha256: SYNTH_HOST.kernelSha256, cmdline: 'console=ttyS0' },
      initramfs_sha256: SYNTH_HOST.initramfsSha256,
      image: { key, recipe: 'synth', path: 'rootfs.ext4' },
      files: {
        memory: { name: 'memory.bin', logical_bytes: mem.length, physical_bytes: 0 },
        vmstate: { name: 'vmstate', bytes: vmstate.length, sha256: crypto.createHash('sha256').update(vmstate).digest('hex') },
        disk: { name: 'disk.qcow2', backing: 'x', physical_bytes: 0 },
      },
      timings: {},
      agent_version: FORKD_VERSION,
    },
    image: { key, recipe: 'synth', suite: 'bookworm', packages: [], disk_mib: SYNTH_DISK_MIB, agent_sha256: 'a'.repeat(64), created_at: new Date(0).toISOString(), build_ms: 1 },
  };
  return { dir, config, files };
}

/** Compresses the files and builds the link (optionally with a hook to forge the manifest). */
export async function synthLink(s: SynthFiles, forge: { config?: (c: SnapshotConfig) => void; manifest?: (m: ArtifactManifest) => void } = {}): Promise<ExportedLink> {
  const config = structuredClone(s.config);
  forge.config?.(config);
  const configBytes = Buffer.from(JSON.stringify(config));
  const blobDir = path.join(s.dir, `blobs-${crypto.randomBytes(4).toString('hex')}`);
  await fs.mkdir(blobDir);
  const configPath = path.join(blobDir, 'config');
  await fs.writeFile(configPath, configBytes);
  const blobs = [{ digest: sha256Digest(configBytes), size: configBytes.length, path: configPath }];
  const layers: ArtifactManifest['layers'] = [];
  for (const name of ['memory.bin', 'vmstate', 'disk.qcow2', 'rootfs.ext4']) {
    const out = path.join(blobDir, name);
    const c = await compressFile(s.files[name]!, out);
    blobs.push({ digest: c.blob.digest, size: c.blob.size, path: out });
    layers.push({ mediaType: name === 'rootfs.ext4' ? MEDIA.rootfs : MEDIA.file, digest: c.blob.digest, size: c.blob.size, annotations: { [ANNOTATION.file]: name, [ANNOTATION.fileSize]: String(c.file.size), [ANNOTATION.fileDigest]: c.file.digest } });
  }
  const manifest: ArtifactManifest = {
    schemaVersion: 2,
    mediaType: MEDIA.manifest,
    artifactType: MEDIA.artifact,
    config: { mediaType: MEDIA.config, digest: blobs[0]!.digest, size: configBytes.length },
    layers,
    annotations: { [ANNOTATION.format]: String(OCI_FORMAT_VERSION), [ANNOTATION.tag]: config.snapshot.tag },
  };
  forge.manifest?.(manifest);
  const bytes = Buffer.from(JSON.stringify(manifest));
  return { tag: config.snapshot.tag, manifest: bytes, digest: sha256Digest(bytes), blobs };
}
