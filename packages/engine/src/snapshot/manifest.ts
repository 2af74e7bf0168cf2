import { z } from 'zod';
import { EvalLanguage } from '@forkd/protocol';

/**
 * snapshot.json: everything a child needs to restore, and everything that must match for a
 * restore to be valid (QEMU version, machine arguments, acceleration). Versioned.
 */
export const MANIFEST_VERSION = 1;

export const SnapshotManifestSchema = z.object({
  format_version: z.literal(MANIFEST_VERSION),
  tag: z.string(),
  created_at: z.string(),
  /** Where this snapshot came from: a recipe boot, or (later) a branch of a sandbox. */
  origin: z.object({ kind: z.enum(['recipe', 'branch', 'diff', 'compact']), recipe: z.string().optional(), source: z.string().optional() }),
  parent_tag: z.string().nullable(),
  language: EvalLanguage,
  qemu: z.object({ version: z.string(), binary: z.string() }),
  accel: z.enum(['kvm', 'tcg']),
  machine: z.object({
    mem_mib: z.number().int().positive(),
    vcpus: z.number().int().positive(),
    /** The device/machine arguments children must repeat exactly (without per-VM paths). */
    signature: z.string(),
  }),
  kernel: z.object({ path: z.string(), version: z.string(), sha256: z.string(), cmdline: z.string() }),
  initramfs_sha256: z.string(),
  image: z.object({ key: z.string(), recipe: z.string(), path: z.string() }),
  files: z.object({
    memory: z.object({ name: z.literal('memory.bin'), logical_bytes: z.number(), physical_bytes: z.number() }),
    vmstate: z.object({ name: z.literal('vmstate'), bytes: z.number(), sha256: z.string() }),
    disk: z.object({ name: z.literal('disk.qcow2'), backing: z.string(), physical_bytes: z.number() }),
  }),
  timings: z.object({ boot_to_agent_ms: z.number(), warmup_ms: z.number(), save_ms: z.number(), total_ms: z.number() }),
  agent_version: z.string(),
});
export type SnapshotManifest = z.output<typeof SnapshotManifestSchema>;

export const MANIFEST_FILE = 'snapshot.json';
