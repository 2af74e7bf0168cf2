import { ForkdError } from './errors.js';

/** Snapshot tags: validated before any path is built from them. */
export const TAG_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$/;

export function isValidTag(tag: unknown): tag is string {
  return typeof tag === 'string' && TAG_PATTERN.test(tag) && tag !== '.' && tag !== '..' && !tag.includes('..');
}

export function assertValidTag(tag: unknown, what = 'tag'): string {
  if (!isValidTag(tag)) {
    throw new ForkdError(
      'FORKD_E_INVALID_TAG',
      `invalid ${what} ${JSON.stringify(tag)}: must match ${TAG_PATTERN.source} and must not contain '..'`,
      { [what]: typeof tag === 'string' ? tag.slice(0, 100) : String(tag) },
    );
  }
  return tag;
}

/** Sandbox ids are random (not guessable): sb-<16 hex>. */
export const SANDBOX_ID_PATTERN = /^sb-[0-9a-f]{16}$/;
/** Job ids: job-<16 hex>. */
export const JOB_ID_PATTERN = /^job-[0-9a-f]{16}$/;
/** Workspace names: like tags, shorter (they also name the workspace's state snapshots). */
export const WORKSPACE_NAME_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,47}$/;

/** Identities named in the token file (who owns sandboxes, snapshots, workspaces and jobs). */
export const IDENTITY_PATTERN = /^[a-z0-9][a-z0-9._-]{0,47}$/;
/**
 * What a token may do. admin: everything, every identity's resources. user: its own resources,
 * plus spawning from snapshots an admin shared. read-only: what a user sees, GET routes only.
 */
export const SCOPES = ['admin', 'user', 'read-only'] as const;
export type Scope = (typeof SCOPES)[number];
/** The identity of the unauthenticated Unix socket, and the owner of records made before tenancy. */
export const LOCAL_IDENTITY = 'local';
/** Tags with this prefix belong to workspaces' saved state: no REST call may choose one. */
export const WORKSPACE_TAG_PREFIX = 'ws-';
