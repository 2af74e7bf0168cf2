/** Workspaces: create (from a snapshot or a running sandbox), get, list, suspend, resume, delete. */
import type { z } from 'zod';
import type { WorkspaceInfo } from '@forkd/api';
import type { Handlers } from '../http/register.js';
import type { DaemonServices } from './context.js';
import type { WorkspaceRecord } from '../workspaces/registry.js';
import { ownerOf } from '../tenancy/access.js';
import { limitsView } from './views.js';
import { quotasOf } from '../quotas/policy.js';
import { egressRecord } from '../sandboxes/egress.js';

type WsRoutes = 'listWorkspaces' | 'createWorkspace' | 'getWorkspace' | 'deleteWorkspace' | 'suspendWorkspace' | 'resumeWorkspace';

export function workspaceView(w: WorkspaceRecord): z.output<typeof WorkspaceInfo> {
  return {
    name: w.name,
    snapshot_tag: w.snapshot_tag,
    status: w.status,
    sandbox_id: w.sandbox_id,
    state_tag: w.state_tag,
    created_at_unix: w.created_at_unix,
    suspended_at_unix: w.suspended_at_unix,
    metadata: w.metadata,
    warning: w.warning,
    per_child_netns: w.network ?? false,
    ...limitsView(w.quotas ?? {}),
    egress: w.egress ?? null,
    owner: ownerOf(w),
  };
}

export function workspaceHandlers(s: DaemonServices): Pick<Handlers, WsRoutes> {
  return {
    async listWorkspaces({ caller }) {
      return { status: 200, body: s.workspaces.list(caller).map(workspaceView) };
    },
    async createWorkspace({ body, caller }) {
      const { name, metadata, envs } = body;
      if ('sandbox_id' in body) {
        // A running sandbox keeps the network, policy and limits it was spawned with (the schema has no such fields here).
        return { status: 201, body: workspaceView(await s.workspaces.create({ name, sandbox_id: body.sandbox_id, ...(metadata ? { metadata } : {}), ...(envs ? { envs } : {}) }, caller)) };
      }
      s.writes.assertNotWriting(body.snapshot_tag, caller);
      const egress = egressRecord(body, s.egress.defaultEgress);
      return { status: 201, body: workspaceView(await s.workspaces.create({ name, snapshot_tag: body.snapshot_tag, ...(metadata ? { metadata } : {}), ...(envs ? { envs } : {}), network: Boolean(body.network || body.per_child_netns), quotas: quotasOf(body), egress }, caller)) };
    },
    async getWorkspace({ params, caller }) {
      return { status: 200, body: workspaceView(s.workspaces.get(params.name, caller)) };
    },
    async deleteWorkspace({ params, caller }) {
      await s.workspaces.remove(params.name, caller);
      return { status: 204 };
    },
    async suspendWorkspace({ params, caller }) {
      return { status: 200, body: workspaceView(await s.workspaces.suspend(params.name, caller)) };
    },
    async resumeWorkspace({ params, body, caller }) {
      const network = body.network ?? body.per_child_netns;
      const egress = egressRecord(body, s.egress.defaultEgress);
      const quotas = quotasOf(body);
      const changes = { ...(network !== undefined ? { network } : {}), ...(egress ? { egress } : {}), ...(Object.keys(quotas).length ? { quotas } : {}) };
      return { status: 200, body: workspaceView(await s.workspaces.resume(params.name, caller, changes)) };
    },
  };
}
