/** Snapshot directories for unit tests: a valid manifest and empty data files, no VM. */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { MANIFEST_VERSION, type SnapshotManifest } from '../snapshot/manifest.js';

export function sampleManifest(tag: string): SnapshotManifest {
  return {
    format_version: MANIFEST_VERSION,
    tag,
    created_at: new Date(0).toISOString(),
    origin: { kind: 'recipe', recipe: 'python' },
    parent_tag: null,
    language: 'python',
    qemu: { version: '7.2.22', binary: 'qemu-system-x86_64' },
    accel: 'tcg',
    machine: { mem_mib: 512, vcpus: 1, signature: 'abc' },
    kernel: { path: '/boot/vmlinuz', version: '6.1', sha256: 'k', cmdline: 'console=ttyS0' },
    initramfs_sha256: 'i',
    image: { key: 'a'.repeat(64), recipe: 'python', path: '/x/rootfs.ext4' },
    files: {
      memory: { name: 'memory.bin', logical_bytes: 1, physical_bytes: 1 },
      vmstate: { name: 'vmstate', bytes: 1, sha256: 'v' },
      disk: { name: 'disk.qcow2', backing: '../x', physical_bytes: 1 },
    },
    timings: { boot_to_agent_ms: 1, warmup_ms: 1, save_ms: 1, total_ms: 1 },
    agent_version: '0.1.0',
  };
}

/** Writes a flat snapshot directory (a manifest given as text is written as is). */
export async function makeSnapshot(root: string, tag: string, manifest: unknown): Promise<void> {
  const dir = path.join(root, 'snapshots', tag);
  await fs.mkdir(dir, { recursive: true });
  for (const f of ['memory.bin', 'vmstate', 'disk.qcow2']) await fs.writeFile(path.join(dir, f), '');
  await fs.writeFile(path.join(dir, 'snapshot.json'), typeof manifest === 'string' ? manifest : JSON.stringify(manifest));
}
