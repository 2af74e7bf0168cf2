import { z } from 'zod';
import { EvalLanguage } from '@forkd/protocol';

/**
 * snapshot.json: everything a child needs to restore, and everything that must match for a
 * restore to be valid (QEMU version, machine arguments, acceleration). Versioned: version 2 adds
 * layers (branches and diffs store only the memory pages that differ from their parent) and
 * free-form timings; version 1 manifests (flat snapshots) are still read.
 */
export const MANIFEST_VERSION = 2;
export const PAGE_SIZE = 4096;

export const SnapshotManifestSchema = z.object({
  format_version: z.union([z.literal(1), z.literal(2)]),
  tag: z.string(),
  created_at: z.string(),
  /** Where this snapshot came from: a recipe boot, a branch of a sandbox, a diff or a compaction. */
  origin: z.object({ kind: z.enum(['recipe', 'branch', 'diff', 'compact']), recipe: z.string().optional(), source: z.string().optional() }),
  /**
   * Set where a pull or unpack wrote this snapshot: the reference (or pack file), the manifest
   * digest of this link, what the trust policy checked and who signed. Local to this store: never
   * exported (a pushed config carries none, an incoming one is ignored).
   */
  pulled_from: z.object({
    ref: z.string().max(1024),
    digest: z.string().max(100),
    verification: z.enum(['verified', 'not-required', 'skipped', 'unsigned-pack']),
    signers: z.array(z.string().max(100)).max(32),
    at: z.string(),
  }).optional(),
  /** The snapshot this one is a layer on (its memory pages and disk blocks are relative to it). */
  parent_tag: z.string().nullable(),
  /** The parent instance (its vmstate hash): a layer never attaches to a re-created parent of the same tag. */
  parent_vmstate_sha256: z.string().optional(),
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
    /** memory.bin (the whole RAM, flat snapshots) or memory.layer (only the changed pages, layers). */
    memory: z.object({ name: z.enum(['memory.bin', 'memory.layer']), logical_bytes: z.number(), physical_bytes: z.number() }),
    vmstate: z.object({ name: z.literal('vmstate'), bytes: z.number(), sha256: z.string() }),
    disk: z.object({ name: z.literal('disk.qcow2'), backing: z.string(), physical_bytes: z.number() }),
    /** Layers: the bitmap of pages memory.layer holds (1 bit per page). */
    pages: z.object({ name: z.literal('memory.pages'), changed_pages: z.number().int(), page_size: z.literal(PAGE_SIZE) }).optional(),
  }),
  timings: z.record(z.string(), z.number()),
  agent_version: z.string(),
  /** A template's envs (its env steps): every child's commands get them, as if setEnvs had been called. */
  envs: z.record(z.string(), z.string()).optional(),
  /** A template's snapshot: the hash of its image and of what the parent ran (services, warm-up, memory). */
  template_key: z.string().optional(),
});
export type SnapshotManifest = z.output<typeof SnapshotManifestSchema>;

export function isLayer(m: SnapshotManifest): boolean {
  return m.files.memory.name === 'memory.layer';
}

/** Files a snapshot directory must hold to be usable. */
export function requiredFiles(m: SnapshotManifest): string[] {
  return isLayer(m) ? ['memory.layer', 'memory.pages', 'vmstate', 'disk.qcow2'] : ['memory.bin', 'vmstate', 'disk.qcow2'];
}
