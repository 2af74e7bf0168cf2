/** Workspaces: create (from a snapshot or a running sandbox), get, list, suspend, resume, delete. */
import type { z } from 'zod';
import type { WorkspaceInfo } from '@forkd/api';
import type { Handlers } from '../http/register.js';
import type { DaemonServices } from './context.js';
import type { WorkspaceRecord } from '../workspaces/registry.js';
import { ownerOf } from '../tenancy/access.js';

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
    memory_limit_mib: null,
    owner: ownerOf(w),
  };
}

export function workspaceHandlers(s: DaemonServices): Pick<Handlers, WsRoutes> {
  return {
    async listWorkspaces({ caller }) {
      return { status: 200, body: s.workspaces.list(caller).map(workspaceView) };
    },
    async createWorkspace({ body, caller }) {
      if (body.snapshot_tag) s.writes.assertNotWriting(body.snapshot_tag, caller);
      const { per_child_netns: alias, network, ...rest } = body;
      return { status: 201, body: workspaceView(await s.workspaces.create({ ...rest, network: Boolean(network || alias) }, caller)) };
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
    async resumeWorkspace({ params, caller }) {
      return { status: 200, body: workspaceView(await s.workspaces.resume(params.name, caller)) };
    },
  };
}
