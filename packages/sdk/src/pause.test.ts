/**
 * pause / connect-resumes / kill on workspaces, against a fake Controller (no daemon): which
 * workspace is used, what counts as already paused, and what kill() removes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Controller, SandboxInfo, WorkspaceInfo } from './controller.js';
import { ConflictError, NotFoundError, errorFor } from './errors.js';
import { getOrResume, killSandboxOrPaused, pauseSandbox } from './pause.js';

const ID = 'sb-0123456789abcdef';

/** A daemon with some running sandboxes and workspaces; records the calls that change anything. */
function fake(running: Array<{ id: string; workspace: string | null }>, workspaces: Array<Pick<WorkspaceInfo, 'name' | 'sandbox_id' | 'status'>>) {
  const calls: string[] = [];
  const sb = new Map(running.map((r) => [r.id, r]));
  const ws = new Map(workspaces.map((w) => [w.name, { ...w }]));
  const ctl = {
    async getSandbox(id: string) {
      const r = sb.get(id);
      if (!r) throw errorFor('FORKD_E_SANDBOX_NOT_FOUND', `no sandbox ${id}`);
      return { id, workspace: r.workspace } as SandboxInfo;
    },
    async listWorkspaces() {
      return [...ws.values()] as WorkspaceInfo[];
    },
    async getWorkspace(name: string) {
      const w = ws.get(name);
      if (!w) throw errorFor('FORKD_E_WORKSPACE_NOT_FOUND', `no workspace ${name}`);
      return w as WorkspaceInfo;
    },
    async createWorkspace(b: { name: string; sandbox_id: string }) {
      calls.push(`create ${b.name}`);
      ws.set(b.name, { name: b.name, sandbox_id: b.sandbox_id, status: 'running' });
      sb.get(b.sandbox_id)!.workspace = b.name;
      return ws.get(b.name) as WorkspaceInfo;
    },
    async suspendWorkspace(name: string) {
      calls.push(`suspend ${name}`);
      const w = ws.get(name)!;
      if (w.status !== 'running') throw errorFor('FORKD_E_CONFLICT', 'not running');
      w.status = 'suspended';
      sb.delete(w.sandbox_id);
      return w as WorkspaceInfo;
    },
    async resumeWorkspace(name: string) {
      calls.push(`resume ${name}`);
      const w = ws.get(name)!;
      w.status = 'running';
      sb.set(w.sandbox_id, { id: w.sandbox_id, workspace: name });
      return w as WorkspaceInfo;
    },
    async deleteWorkspace(name: string) {
      calls.push(`delete-ws ${name}`);
      const w = ws.get(name);
      if (!w) throw errorFor('FORKD_E_WORKSPACE_NOT_FOUND', `no workspace ${name}`);
      ws.delete(name);
      sb.delete(w.sandbox_id);
    },
    async killSandbox(id: string) {
      calls.push(`kill ${id}`);
      if (!sb.delete(id)) throw errorFor('FORKD_E_SANDBOX_NOT_FOUND', `no sandbox ${id}`);
    },
  };
  return { ctl: ctl as unknown as Controller, calls };
}

test('pause: a plain sandbox becomes a workspace named after its id, then is suspended; twice is false', async () => {
  const { ctl, calls } = fake([{ id: ID, workspace: null }], []);
  assert.equal(await pauseSandbox(ctl, ID), true);
  assert.deepEqual(calls, [`create ${ID}`, `suspend ${ID}`]);
  assert.equal(await pauseSandbox(ctl, ID), false, 'already paused');
  assert.equal(calls.length, 2, 'nothing more was changed');
});

test('pause: a sandbox of a named workspace suspends that workspace', async () => {
  const { ctl, calls } = fake([{ id: ID, workspace: 'proj' }], [{ name: 'proj', sandbox_id: ID, status: 'running' }]);
  assert.equal(await pauseSandbox(ctl, ID), true);
  assert.deepEqual(calls, ['suspend proj']);
});

test('pause: an unknown sandbox is NotFoundError', async () => {
  const { ctl } = fake([], []);
  await assert.rejects(pauseSandbox(ctl, ID), (e: NotFoundError) => e instanceof NotFoundError && e.code === 'FORKD_E_SANDBOX_NOT_FOUND');
});

test('connect: running is returned as is; paused is resumed (any workspace name); unknown is NotFoundError', async () => {
  const { ctl, calls } = fake([{ id: ID, workspace: null }], [{ name: 'proj', sandbox_id: 'sb-1111111111111111', status: 'suspended' }]);
  assert.equal((await getOrResume(ctl, ID)).id, ID);
  assert.equal((await getOrResume(ctl, 'sb-1111111111111111')).id, 'sb-1111111111111111');
  assert.deepEqual(calls, ['resume proj']);
  await assert.rejects(getOrResume(ctl, 'sb-2222222222222222'), (e: NotFoundError) => e.code === 'FORKD_E_SANDBOX_NOT_FOUND');
});

test('kill: the workspace pause() made is deleted (running or paused); a plain sandbox is killed; nothing is false', async () => {
  const own = fake([], [{ name: ID, sandbox_id: ID, status: 'suspended' }]);
  assert.equal(await killSandboxOrPaused(own.ctl, ID), true);
  assert.deepEqual(own.calls, [`delete-ws ${ID}`]);
  assert.equal(await killSandboxOrPaused(own.ctl, ID), false);

  const resumed = fake([{ id: ID, workspace: ID }], [{ name: ID, sandbox_id: ID, status: 'running' }]);
  assert.equal(await killSandboxOrPaused(resumed.ctl, ID), true);
  assert.deepEqual(resumed.calls, [`delete-ws ${ID}`]);

  const plain = fake([{ id: ID, workspace: null }], []);
  assert.equal(await killSandboxOrPaused(plain.ctl, ID), true);
  assert.deepEqual(plain.calls, [`kill ${ID}`]);
});

test('kill: a workspace the user named is not deleted; paused in it is a ConflictError naming it', async () => {
  const running = fake([{ id: ID, workspace: 'proj' }], [{ name: 'proj', sandbox_id: ID, status: 'running' }]);
  assert.equal(await killSandboxOrPaused(running.ctl, ID), true);
  assert.deepEqual(running.calls, [`kill ${ID}`]);

  const paused = fake([], [{ name: 'proj', sandbox_id: ID, status: 'suspended' }]);
  await assert.rejects(killSandboxOrPaused(paused.ctl, ID), (e: ConflictError) => e instanceof ConflictError && e.code === 'FORKD_E_CONFLICT' && e.details?.workspace === 'proj');
  assert.deepEqual(paused.calls, []);
});
