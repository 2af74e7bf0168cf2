/** Routes declared in the API whose features are not built yet: a clear 501, never a silent no-op. */
import { ForkdError } from '@forkd/protocol';
import type { Handlers } from '../http/register.js';

type Pending = 'branch' | 'fork' | 'compactSnapshot' | 'diffSnapshot' | 'listWorkspaces' | 'createWorkspace' | 'getWorkspace' | 'deleteWorkspace' | 'suspendWorkspace' | 'resumeWorkspace';

export function pendingHandlers(): Pick<Handlers, Pending> {
  const no = (what: string) => async () => {
    throw new ForkdError('FORKD_E_NOT_IMPLEMENTED', `${what} is not implemented yet`);
  };
  return {
    branch: no('branch'),
    fork: no('fork'),
    compactSnapshot: no('snapshot compact'),
    diffSnapshot: no('snapshot diff'),
    listWorkspaces: no('workspaces'),
    createWorkspace: no('workspaces'),
    getWorkspace: no('workspaces'),
    deleteWorkspace: no('workspaces'),
    suspendWorkspace: no('workspaces'),
    resumeWorkspace: no('workspaces'),
  };
}
