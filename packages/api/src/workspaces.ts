/** Workspaces: named long-lived sandboxes that can be suspended to disk and resumed. */
import { z } from 'zod';
import { Tag, SandboxId, WorkspaceName, Metadata, Envs, Identity } from './common.js';

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
  memory_limit_mib: z.null(),
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
  /** The workspace's sandbox gets its own network, kept across suspend and resume. */
  network: z.boolean().optional(),
  /** forkd's name for `network`. */
  per_child_netns: z.boolean().optional(),
  memory_limit_mib: z.null().optional(),
}).strict().refine((b) => (b.snapshot_tag === undefined) !== (b.sandbox_id === undefined), 'exactly one of snapshot_tag or sandbox_id is required');

export const SuspendBody = z.object({ diff: z.boolean().optional() }).strict();
export const ResumeBody = z.object({}).strict();
export const WorkspaceParams = z.object({ name: WorkspaceName }).strict();
