/** Shared wire types of the REST API (snake_case, as the original forkd). */
import { z } from 'zod';
import { TAG_PATTERN, SANDBOX_ID_PATTERN, JOB_ID_PATTERN, WORKSPACE_NAME_PATTERN, IDENTITY_PATTERN, ERROR_CODES, LIMITS, EnvMap } from '@forkd/protocol';

export { GuestPath } from '@forkd/protocol';

export const Tag = z.string().regex(TAG_PATTERN, 'invalid tag').refine((t) => !t.includes('..'), 'invalid tag').describe('snapshot tag');
export const SandboxId = z.string().regex(SANDBOX_ID_PATTERN, 'invalid sandbox id').describe('sandbox id (sb-<16 hex>)');
export const WorkspaceName = z.string().regex(WORKSPACE_NAME_PATTERN, 'invalid workspace name (letters, digits, . _ -, at most 48)').refine((t) => !t.includes('..'), 'invalid workspace name');
/** The identity that made a resource (named in the daemon's token file; "local" on a socket without one). */
export const Identity = z.string().regex(IDENTITY_PATTERN, 'invalid identity').describe('owner identity');
export const JobId = z.string().regex(JOB_ID_PATTERN, 'invalid job id');
export const RecipeName = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'recipe must be a recipe name (no paths)');
const { maxKeys, maxKeyChars, maxValueChars } = LIMITS.metadata;
export const Metadata = z.record(z.string().min(1).max(maxKeyChars), z.string().max(maxValueChars)).refine((m) => Object.keys(m).length <= maxKeys, `at most ${maxKeys} metadata keys`);
export const Envs = EnvMap;
/** Query booleans arrive as strings. */
export const QueryBool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');

const codes = Object.keys(ERROR_CODES) as [keyof typeof ERROR_CODES, ...Array<keyof typeof ERROR_CODES>];
export const ErrorBody = z.object({
  error: z.object({
    code: z.enum(codes),
    message: z.string(),
    details: z.record(z.string(), z.unknown()).optional(),
  }),
});

export const Healthz = z.object({ ok: z.literal(true) });
export const Version = z.object({ version: z.string(), api: z.literal('v1'), qemu: z.string().nullable(), accel: z.enum(['kvm', 'tcg']).nullable() });

/** A long-running operation (snapshot creation, branch with wait=false, diff, compact). */
export const Job = z.object({
  id: JobId,
  kind: z.enum(['snapshot.create', 'snapshot.branch', 'snapshot.diff', 'snapshot.compact', 'workspace.suspend', 'snapshot.push', 'snapshot.pull']),
  status: z.enum(['queued', 'running', 'succeeded', 'failed']),
  created_at_unix: z.number().int(),
  finished_at_unix: z.number().int().nullable(),
  progress: z.object({ phase: z.string(), message: z.string(), fraction: z.number().nullable() }),
  /** The finished job's resource (a SnapshotInfo for snapshot jobs). */
  result: z.unknown().nullable(),
  error: ErrorBody.shape.error.nullable(),
  /** The identity that started it. */
  owner: Identity,
});
