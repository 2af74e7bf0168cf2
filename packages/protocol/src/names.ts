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
