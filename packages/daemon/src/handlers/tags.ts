/** Tags a REST caller may choose for a new snapshot. */
import { ForkdError, WORKSPACE_TAG_PREFIX } from '@forkd/protocol';

/**
 * The `ws-` prefix names workspaces' saved state (ws-<name>-s<seq>): a caller who could create
 * such a tag could make another identity's next suspend fail (V4), so no REST call may choose one.
 */
export function assertCallerTag(tag: string): string {
  if (tag.startsWith(WORKSPACE_TAG_PREFIX)) {
    throw new ForkdError('FORKD_E_INVALID_TAG', `tag ${tag} starts with "${WORKSPACE_TAG_PREFIX}", which is reserved for workspace state snapshots: pick another tag`, { tag });
  }
  return tag;
}
