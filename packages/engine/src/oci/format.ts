/**
 * A forkd snapshot as an OCI artifact (docs/oci-format.md is the prose version; keep them together).
 * One image manifest per link of a snapshot chain:
 *   artifactType  application/vnd.forkd.snapshot.v1
 *   config        the snapshot's manifest and its image's record (SnapshotConfig, JSON)
 *   layers        one zstd blob per file a child needs (memory, page bitmap, device state, disk
 *                 layer), each annotated with the file's name, decompressed size and digest; the
 *                 root of a chain also carries its ext4 root filesystem (shared by digest between
 *                 every snapshot made from the same image)
 *   annotations   the format version, the tag, and for a layer the digest of its parent's manifest,
 *                 so a pull walks down the chain and stops at the first link the store already has.
 */
import { z } from 'zod';
import { ForkdError, FORKD_VERSION, OCI_LIMITS } from '@forkd/protocol';
import { SnapshotManifestSchema, requiredFiles, type SnapshotManifest } from '../snapshot/manifest.js';
import { ImageInfoSchema } from '../image/build.js';
import { machineSignature } from '../snapshot/machine.js';
import { DIGEST } from './reference.js';

export const OCI_FORMAT_VERSION = 1;
export const MEDIA = {
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  artifact: 'application/vnd.forkd.snapshot.v1',
  config: 'application/vnd.forkd.snapshot.config.v1+json',
  file: 'application/vnd.forkd.snapshot.file.v1+zstd',
  rootfs: 'application/vnd.forkd.image.rootfs.v1.ext4+zstd',
  layoutIndex: 'application/vnd.oci.image.index.v1+json',
} as const;

export const ANNOTATION = {
  format: 'org.forkd.format.version',
  tag: 'org.forkd.snapshot.tag',
  parent: 'org.forkd.parent.manifest',
  file: 'org.forkd.file.name',
  fileSize: 'org.forkd.file.size',
  fileDigest: 'org.forkd.file.digest',
  created: 'org.opencontainers.image.created',
  refName: 'org.opencontainers.image.ref.name',
} as const;

/** The image's root filesystem travels under this name (it lands in images/<key>/). */
export const ROOTFS_FILE = 'rootfs.ext4';
/** Every file name an artifact may carry: a name outside this list is refused before any path is built. */
export const SNAPSHOT_FILES = ['memory.bin', 'memory.layer', 'memory.pages', 'vmstate', 'disk.qcow2'] as const;

const Descriptor = z.object({
  mediaType: z.string().max(255),
  digest: z.string().regex(DIGEST),
  size: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  annotations: z.record(z.string().max(255), z.string().max(4096)).optional(),
});
export type DescriptorT = z.output<typeof Descriptor>;

export const ArtifactManifestSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.literal(MEDIA.manifest),
  artifactType: z.literal(MEDIA.artifact),
  config: Descriptor.extend({ mediaType: z.literal(MEDIA.config) }),
  layers: z.array(Descriptor).min(1).max(16),
  annotations: z.record(z.string().max(255), z.string().max(4096)),
});
export type ArtifactManifest = z.output<typeof ArtifactManifestSchema>;

export const SnapshotConfigSchema = z.object({
  forkd_oci_format: z.literal(OCI_FORMAT_VERSION),
  snapshot: SnapshotManifestSchema,
  /** The image record without host paths (set again where it lands). */
  image: ImageInfoSchema.omit({ path: true }),
});
export type SnapshotConfig = z.output<typeof SnapshotConfigSchema>;

/** One file of a link, as the manifest's layer annotations declare it (validated, never trusted further). */
export interface DeclaredFile {
  name: (typeof SNAPSHOT_FILES)[number] | typeof ROOTFS_FILE;
  blob: DescriptorT;
  size: number;
  digest: string;
}

function invalid(message: string, details?: Record<string, unknown>): ForkdError {
  return new ForkdError('FORKD_E_ARTIFACT_INVALID', message, details);
}

/** JSON from an artifact, size-capped before it is parsed and checked against its schema. */
function parseCapped<T extends z.ZodTypeAny>(bytes: Buffer, limit: number, schema: T, what: string, isNot: string): z.output<T> {
  if (bytes.length > limit) throw new ForkdError('FORKD_E_ARTIFACT_TOO_LARGE', `${what} is ${bytes.length} bytes (limit ${limit})`);
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw invalid(`${what} is not JSON`);
  }
  const r = schema.safeParse(json);
  if (!r.success) {
    const i = r.error.issues[0];
    throw invalid(`${what} is not ${isNot}: ${i?.path.join('.') ?? ''} ${i?.message ?? ''}`.trim());
  }
  return r.data;
}

export function parseArtifactManifest(bytes: Buffer, what: string): ArtifactManifest {
  const m: ArtifactManifest = parseCapped(bytes, OCI_LIMITS.maxManifestBytes, ArtifactManifestSchema, what, `a forkd snapshot artifact (format ${OCI_FORMAT_VERSION})`);
  const fmt = m.annotations[ANNOTATION.format];
  if (fmt !== String(OCI_FORMAT_VERSION)) throw invalid(`${what} has forkd artifact format ${JSON.stringify(fmt)}; this forkd reads format ${OCI_FORMAT_VERSION}`);
  const parent = m.annotations[ANNOTATION.parent];
  if (parent !== undefined && !DIGEST.test(parent)) throw invalid(`${what}: parent annotation is not a digest`);
  return m;
}

export function parseSnapshotConfig(bytes: Buffer, what: string): SnapshotConfig {
  return parseCapped(bytes, OCI_LIMITS.maxConfigBytes, SnapshotConfigSchema, what, 'a forkd snapshot config');
}

/**
 * The files a link declares, checked against its config: exactly the files the snapshot needs
 * (plus the root filesystem on a root link), each once, with the file blob media type, sizes under
 * the caps and consistent with the snapshot manifest. A forged config or lying media type stops here.
 */
export function declaredFiles(m: ArtifactManifest, cfg: SnapshotConfig, what: string): DeclaredFile[] {
  const snap = cfg.snapshot;
  const want = new Set<string>(requiredFiles(snap));
  if (snap.parent_tag === null) want.add(ROOTFS_FILE);
  if ((snap.parent_tag === null) !== (m.annotations[ANNOTATION.parent] === undefined)) {
    throw invalid(`${what}: the config's parent (${snap.parent_tag ?? 'none'}) and the manifest's parent link disagree`);
  }
  if (m.annotations[ANNOTATION.tag] !== snap.tag) throw invalid(`${what}: the manifest names tag ${m.annotations[ANNOTATION.tag]} but its config ${snap.tag}`);
  const out: DeclaredFile[] = [];
  const seenNames = new Set<string>();
  const seenDigests = new Set<string>();
  for (const l of m.layers) {
    const name = l.annotations?.[ANNOTATION.file];
    if (name === undefined || !want.has(name)) throw invalid(`${what}: unexpected layer file ${JSON.stringify(name)} (expected ${[...want].join(', ')})`, { file: name });
    if (seenNames.has(name)) throw new ForkdError('FORKD_E_ARTIFACT_DUPLICATE', `${what}: file ${name} appears twice`, { file: name });
    seenNames.add(name);
    if (seenDigests.has(l.digest)) throw new ForkdError('FORKD_E_ARTIFACT_DUPLICATE', `${what}: two layers claim the same blob ${l.digest}`, { digest: l.digest });
    seenDigests.add(l.digest);
    const wantType = name === ROOTFS_FILE ? MEDIA.rootfs : MEDIA.file;
    if (l.mediaType !== wantType) throw invalid(`${what}: ${name} has media type ${l.mediaType}, expected ${wantType}`);
    const sizeText = l.annotations?.[ANNOTATION.fileSize] ?? '';
    const size = /^[0-9]{1,16}$/.test(sizeText) ? Number(sizeText) : NaN;
    const digest = l.annotations?.[ANNOTATION.fileDigest] ?? '';
    if (!Number.isSafeInteger(size) || !DIGEST.test(digest)) throw invalid(`${what}: ${name} lacks a valid decompressed size or digest`);
    if (size > OCI_LIMITS.maxFileBytes) throw new ForkdError('FORKD_E_ARTIFACT_TOO_LARGE', `${what}: ${name} declares ${size} bytes (limit ${OCI_LIMITS.maxFileBytes})`);
    const bound = sizeBound(name, cfg);
    if (bound !== null && size > bound) throw invalid(`${what}: ${name} declares ${size} bytes, more than its config allows (${bound})`);
    if (name === 'vmstate' && (size !== snap.files.vmstate.bytes || digest !== `sha256:${snap.files.vmstate.sha256}`)) {
      throw invalid(`${what}: the device state's size or digest disagrees with the config`);
    }
    out.push({ name: name as DeclaredFile['name'], blob: l, size, digest });
  }
  const missing = [...want].filter((n) => !seenNames.has(n));
  if (missing.length) throw invalid(`${what}: missing ${missing.join(', ')}`);
  return out;
}

/** What a file can be at most given its config (the guest's RAM, its bitmap, the image's disk). */
function sizeBound(name: string, cfg: SnapshotConfig): number | null {
  const ram = cfg.snapshot.machine.mem_mib * 1024 * 1024;
  switch (name) {
    case 'memory.bin':
    case 'memory.layer':
      return ram;
    case 'memory.pages':
      return Math.ceil(ram / 4096 / 8);
    case ROOTFS_FILE:
      return cfg.image.disk_mib * 1024 * 1024;
    case 'disk.qcow2':
      return cfg.image.disk_mib * 1024 * 1024 * 2 + 64 * 1024 * 1024; // qcow2 metadata on top of the data
    default:
      return null;
  }
}

/** What the pulling host runs, compared with what the snapshot was made on. */
export interface HostCompat {
  qemuVersion: string;
  accel: 'kvm' | 'tcg';
  kernelSha256: string;
  initramfsSha256: string;
  agentVersion: string;
  /** Where this host's kernel is (written into pulled manifests). */
  kernelPath: string;
}

export function hostAgentVersion(): string {
  return FORKD_VERSION;
}

/**
 * Refuses a snapshot this host cannot restore, naming both sides: QEMU version, acceleration,
 * machine layout, guest kernel and initramfs, agent protocol (major.minor).
 */
export function checkCompatible(snap: SnapshotManifest, host: HostCompat, ref: string): void {
  const diffs: string[] = [];
  const details: Record<string, unknown> = { reference: ref };
  const cmp = (what: string, theirs: string, ours: string) => {
    if (theirs === ours) return;
    diffs.push(`${what}: artifact ${theirs}, this host ${ours}`);
    details[what.replace(/ /g, '_')] = { artifact: theirs, host: ours };
  };
  cmp('qemu version', snap.qemu.version, host.qemuVersion);
  cmp('accel', snap.accel, host.accel);
  cmp('machine', snap.machine.signature, machineSignature(snap.accel, snap.machine.mem_mib, snap.machine.vcpus));
  cmp('kernel sha256', snap.kernel.sha256, host.kernelSha256);
  cmp('initramfs sha256', snap.initramfs_sha256, host.initramfsSha256);
  cmp('agent version', majorMinor(snap.agent_version), majorMinor(host.agentVersion));
  if (diffs.length) {
    throw new ForkdError('FORKD_E_SNAPSHOT_INCOMPATIBLE', `${ref} (snapshot ${snap.tag}) cannot be restored on this host: ${diffs.join('; ')}`, details);
  }
}

function majorMinor(v: string): string {
  return v.split('.').slice(0, 2).join('.');
}
