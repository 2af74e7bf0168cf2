/** Workspaces: named long-lived sandboxes that can be suspended to disk and resumed. */
import { z } from 'zod';
import { Tag, SandboxId, WorkspaceName, Metadata, Envs, Identity } from './common.js';
import { EgressFields, EgressView } from './egress.js';
import { NetworkFields, QuotaFields, SandboxLimits, SpawnLimitFields } from './sandboxes.js';

export const WorkspaceInfo = z.object({
  name: WorkspaceName,
  snapshot_tag: Tag,
  status: z.enum(['running', 'suspended']),
  /** The workspace's sandbox id: the same while it runs and after every resume. */
  sandbox_id: SandboxId,
  /** The snapshot holding the suspended state (null while running and never suspended). */
  state_tag: Tag.nullable(),
  created_at_unix: z.number().int(),
  suspended_at_unix: z.number().int().nullable(),
  metadata: z.record(z.string(), z.string()),
  /** Set when the workspace's VM was lost (e.g. a host reboot) after its last suspend. */
  warning: z.string().nullable(),
  /** forkd fields. */
  per_child_netns: z.boolean(),
  /** The limits its sandbox runs with (kept across suspend and resume; resume may change them). */
  memory_limit_mib: QuotaFields.memory_limit_mib.nullable(),
  limits: SandboxLimits,
  /** Its sandbox's egress policy (kept across suspend and resume); null when none was given. */
  egress: EgressView.nullable(),
  /** The identity that created it (its state snapshots are this identity's too). */
  owner: Identity,
});

export const CreateWorkspaceBody = z.object({
  name: WorkspaceName,
  /** Start a new sandbox from this snapshot... */
  snapshot_tag: Tag.optional(),
  /** ...or make this running sandbox a workspace (E2B's pause() of any sandbox). */
  sandbox_id: SandboxId.optional(),
  metadata: Metadata.optional(),
  envs: Envs.optional(),
  /** The workspace's sandbox gets its own network, kept across suspend and resume (spawn's fields). */
  ...NetworkFields,
  /** Its egress policy and limits, as spawn takes them (a new sandbox only: not with sandbox_id). */
  ...EgressFields,
  ...SpawnLimitFields,
}).strict().refine((b) => (b.snapshot_tag === undefined) !== (b.sandbox_id === undefined), 'exactly one of snapshot_tag or sandbox_id is required');

export const SuspendBody = z.object({ diff: z.boolean().optional() }).strict();
/**
 * Resume restores the workspace with its recorded network, egress policy and limits; fields given
 * here replace them from now on (as spawn takes them; the daemon's maxima apply).
 */
export const ResumeBody = z.object({ ...NetworkFields, ...EgressFields, ...SpawnLimitFields }).strict();
export const WorkspaceParams = z.object({ name: WorkspaceName }).strict();
