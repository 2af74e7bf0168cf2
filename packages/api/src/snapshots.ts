/** Snapshots: creation from recipes, listing, detail, deletion, chains (diff, compact), the tree. */
import { z } from 'zod';
import { CALL_TIMEOUT_SECS, EvalLanguage, LIMITS, MACHINE_LIMITS } from '@forkd/protocol';
import { Tag, RecipeName, QueryBool, SandboxId, JobId, Identity } from './common.js';

const { memMib, vcpus } = MACHINE_LIMITS;

export const SnapshotInfo = z.object({
  tag: Tag,
  created_at_unix: z.number().int(),
  /** forkd: writing (still being captured), ready, failed (a background write that failed; warning says why). */
  status: z.enum(['writing', 'ready', 'failed']),
  bootable: z.boolean(),
  recipe: z.string().nullable(),
  language: EvalLanguage,
  accel: z.enum(['kvm', 'tcg']),
  mem_mib: z.number().int(),
  vcpus: z.number().int(),
  /** The snapshot this one is a layer on (branches and diffs), else null. */
  parent_tag: Tag.nullable(),
  /** forkd: where it came from: "recipe:<name>", "sandbox:<id>" (branch), "diff:<tag>", "compact:<tag>". */
  branched_from: z.string().nullable(),
  /** Where a pulled or unpacked snapshot came from (null: made on this host). signers: key ids whose valid signatures the trust policy checked. */
  pulled_from: z.object({ ref: z.string(), digest: z.string(), verification: z.enum(['verified', 'not-required', 'skipped', 'unsigned-pack']), signers: z.array(z.string()) }).nullable(),
  /** How long the source sandbox was paused (branches only). */
  pause_ms: z.number().nullable(),
  memory_physical_bytes: z.number(),
  disk_physical_bytes: z.number(),
  /** Live sandboxes restored from it (a non-admin counts only its own). */
  live_sandboxes: z.number().int(),
  warning: z.string().nullable(),
  /** The identity that made it ("local" for snapshots made outside the daemon or before tenancy). */
  owner: Identity,
  /** Shared by an admin: every identity may see it and spawn from it; only its owner and admins change it. */
  shared: z.boolean(),
});

/**
 * forkd's answer to a branch with wait=false (202): the snapshot as listed while it is written
 * (status "writing", not bootable), with the job to follow. GET /v1/snapshots then shows it as
 * "writing", later "ready", or "failed" (with the error as warning) until the tag is reused or deleted.
 */
export const SnapshotWriting = SnapshotInfo.extend({ job_id: JobId });

export const SnapshotInfoDetail = SnapshotInfo.extend({
  memory_logical_bytes: z.number(),
  vmstate_bytes: z.number(),
  qemu_version: z.string(),
  kernel_version: z.string(),
  image_key: z.string(),
  chain_depth: z.number().int(),
  /** Root first. */
  ancestors: z.array(Tag),
  dependents: z.array(Tag),
  /** Bytes this layer stores itself, against what a flat copy of its state would take. */
  layer_physical_bytes: z.number(),
  logical_bytes: z.number(),
  timings: z.record(z.string(), z.number()),
});

export const CreateSnapshotBody = z.object({
  tag: Tag,
  recipe: RecipeName,
  mem_mib: z.number().int().min(memMib.min).max(memMib.max).optional(),
  vcpus: z.number().int().min(vcpus.min).max(vcpus.max).optional(),
  /** false (default): 202 with a job to poll. true: block until done, 201 SnapshotInfo. */
  wait: z.boolean().optional(),
}).strict();

export const DeleteSnapshotQuery = z.object({
  /** Also delete every snapshot layered on this one. */
  cascade: QueryBool.optional(),
  /** Delete even while sandboxes run from it (they keep running: their files stay open). */
  force: QueryBool.optional(),
}).strict();

export const CompactBody = z.object({ to: Tag, wait: z.boolean().optional() }).strict();

export const DiffBody = z.object({
  /** Tag of the new layer. */
  to: Tag,
  /** A shell command line run in a child of the snapshot (so `&&` and pipes work). */
  cmd: z.string().min(1).max(LIMITS.maxCodeBytes),
  timeout_secs: z.number().positive().max(CALL_TIMEOUT_SECS.max).default(CALL_TIMEOUT_SECS.diff),
  wait: z.boolean().optional(),
}).strict();

export const TreeNode: z.ZodType<TreeNodeT> = z.lazy(() => z.object({
  tag: Tag,
  kind: z.enum(['recipe', 'branch', 'diff', 'compact']),
  created_at_unix: z.number().int(),
  sandboxes: z.array(SandboxId),
  children: z.array(TreeNode),
}));
export interface TreeNodeT {
  tag: string;
  kind: 'recipe' | 'branch' | 'diff' | 'compact';
  created_at_unix: number;
  sandboxes: string[];
  children: TreeNodeT[];
}
export const SnapshotTree = z.object({ roots: z.array(TreeNode) });

/**
 * Registry access for push and pull. The password travels in the body (never a query string) and
 * is never logged or kept in the job record; without one, the daemon's Docker config.json is used.
 */
const RegistryAuth = {
  /** host[:port]/repository[:tag|@sha256:...] (the OCI distribution spec's reference grammar); for a pull also owner/name[@version] when the daemon runs with FORKD_HUB. */
  ref: z.string().min(1).max(1024),
  username: z.string().min(1).max(256).optional(),
  password: z.string().min(1).max(4096).optional(),
  /** Talk http to a registry that is not on loopback (loopback registries are http already). */
  plain_http: z.boolean().optional(),
};

export const PushBody = z.object({ ...RegistryAuth, wait: z.boolean().optional() }).strict();
/**
 * No trust options here on purpose: which signatures a pull needs is the operator's choice (the
 * daemon's trust policy file), and a caller can neither name another policy nor skip verification.
 */
export const PullBody = z.object({ ...RegistryAuth, /** The tag the head lands under (default: its own). */ tag: Tag.optional(), wait: z.boolean().optional() }).strict();

export const PushResult = z.object({
  reference: z.string(),
  digest: z.string(),
  links: z.array(z.object({ tag: Tag, digest: z.string() })),
  bytes_sent: z.number(),
  bytes_total: z.number(),
  blobs_skipped: z.number().int(),
  /** The signature attached to the head (CLI push --sign; keys stay on the client's machine). */
  signature: z.object({ digest: z.string(), key_id: z.string(), via: z.enum(['referrers', 'tag']) }).optional(),
});
export const PullResult = z.object({
  reference: z.string(),
  tag: Tag,
  digest: z.string(),
  /** Tags written, root first. */
  imported: z.array(Tag),
  /** The ancestor the store already had, where the walk down the chain stopped. */
  reused: Tag.nullable(),
  /** Whether the image's root filesystem travelled (false: this store had it). */
  image_fetched: z.boolean(),
  bytes_received: z.number(),
  /** What was checked before anything became visible, under the daemon's trust policy. */
  verification: z.object({
    /** verified: the policy's keys signed it; not-required: no policy rule asks; skipped: the CLI's --insecure-skip-verify. */
    status: z.enum(['verified', 'not-required', 'skipped']),
    /** Key ids (sha256 of the public key) whose valid signatures were found. */
    signers: z.array(z.string()),
    /** The policy scope that applied. */
    scope: z.string().nullable(),
  }),
});
