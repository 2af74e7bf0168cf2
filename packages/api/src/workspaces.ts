/** Workspaces: named long-lived sandboxes that can be suspended to disk and resumed. */
import { z } from 'zod';
import { Tag, SandboxId, WorkspaceName, Metadata, Envs } from './common.js';

export const WorkspaceInfo = z.object({
  name: WorkspaceName,
  snapshot_tag: Tag,
  status: z.enum(['running', 'suspended']),
  sandbox_id: SandboxId.nullable(),
  /** The snapshot holding the suspended state (null while running and never suspended). */
  state_tag: Tag.nullable(),
  created_at_unix: z.number().int(),
  suspended_at_unix: z.number().int().nullable(),
  metadata: z.record(z.string(), z.string()),
  /** forkd fields. */
  per_child_netns: z.boolean(),
  memory_limit_mib: z.null(),
});

export const CreateWorkspaceBody = z.object({
  name: WorkspaceName,
  snapshot_tag: Tag,
  metadata: Metadata.optional(),
  envs: Envs.optional(),
  per_child_netns: z.boolean().optional().refine((v) => v !== true, 'per_child_netns is not supported by this forkd'),
  memory_limit_mib: z.null().optional(),
}).strict();

export const SuspendBody = z.object({ diff: z.boolean().optional() }).strict();
export const ResumeBody = z.object({}).strict();
export const WorkspaceParams = z.object({ name: WorkspaceName }).strict();
