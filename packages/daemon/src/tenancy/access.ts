/**
 * Who may see and touch what. An admin sees everything. A user or read-only token sees its own
 * identity's resources and the snapshots an admin shared; another identity's resource is answered
 * as not found (its existence is not revealed). read-only tokens use GET routes only.
 */
import { ForkdError, LOCAL_IDENTITY } from '@forkd/protocol';
import type { Caller } from '../http/auth.js';

/** The owner of a record made before tenancy existed (no owner field). */
export const ownerOf = (rec: { owner?: string | null }): string => rec.owner ?? LOCAL_IDENTITY;

export const isAdmin = (c: Caller): boolean => c.scope === 'admin';

/** May the caller see a resource with this owner (shared: a snapshot an admin published)? */
export function canSee(c: Caller, owner: string, shared = false): boolean {
  return isAdmin(c) || owner === c.identity || shared;
}

/** May the caller change or delete it (shared snapshots are only spawned from by others)? */
export function canChange(c: Caller, owner: string): boolean {
  return isAdmin(c) || owner === c.identity;
}

/** Route-level scope rules: read-only writes nothing, admin-only routes need an admin. */
export function assertScope(c: Caller, method: string, route: { admin?: boolean; readOnlyAllowed?: boolean; name: string }): void {
  if (c.scope === 'read-only' && method !== 'GET' && method !== 'HEAD' && route.readOnlyAllowed !== true) {
    throw new ForkdError('FORKD_E_FORBIDDEN', `a read-only token cannot call ${route.name} (${method}): it may use GET routes only`, { scope: c.scope });
  }
  if (route.admin && !isAdmin(c)) throw new ForkdError('FORKD_E_FORBIDDEN', `${route.name} needs an admin token`, { scope: c.scope });
}
