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

const WorkspaceCommon = {
  name: WorkspaceName,
  metadata: Metadata.optional(),
  envs: Envs.optional(),
};

/** A new sandbox from a snapshot, with spawn's network, egress policy and limits (kept across suspend and resume). */
export const CreateWorkspaceFromSnapshot = z.object({
  ...WorkspaceCommon,
  snapshot_tag: Tag,
  ...NetworkFields,
  ...EgressFields,
  ...SpawnLimitFields,
}).strict();

/** A running sandbox made a workspace (E2B's pause() of any sandbox): it keeps its own network, policy and limits. */
export const CreateWorkspaceFromSandbox = z.object({
  ...WorkspaceCommon,
  sandbox_id: SandboxId,
}).strict();

export const CreateWorkspaceBody = z.union([CreateWorkspaceFromSnapshot, CreateWorkspaceFromSandbox], {
  error: 'exactly one of snapshot_tag or sandbox_id is required; network, egress and limit fields go with snapshot_tag (a running sandbox keeps its own)',
});

/** Every field of either form, all optional (CLI flags, MCP's tool input); the daemon validates with CreateWorkspaceBody. */
export const CreateWorkspaceFields = z.object({ ...CreateWorkspaceFromSnapshot.shape, snapshot_tag: Tag.optional(), sandbox_id: SandboxId.optional() });

export const SuspendBody = z.object({ diff: z.boolean().optional() }).strict();
/**
 * Resume restores the workspace with its recorded network, egress policy and limits; fields given
 * here replace them from now on (as spawn takes them; the daemon's maxima apply).
 */
export const ResumeBody = z.object({ ...NetworkFields, ...EgressFields, ...SpawnLimitFields }).strict();
export const WorkspaceParams = z.object({ name: WorkspaceName }).strict();
