/**
 * E2B's pause / connect-resumes / kill-a-paused-sandbox, on the daemon's workspaces. A paused
 * sandbox is a suspended workspace: pause() makes the sandbox a workspace named after its own id
 * (unless it already belongs to one) and suspends it, which saves memory, devices and disk as a
 * snapshot layer and stops the VM. Resuming it restores the same sandbox id, envs and metadata.
 */
import type { Controller, SandboxInfo, WorkspaceInfo } from './controller.js';
import { ConflictError, NotFoundError, errorFor } from './errors.js';

/** The suspended workspace holding this sandbox id, if any (the sandbox is then "paused"). */
export async function pausedWorkspaceOf(ctl: Controller, sandboxId: string): Promise<WorkspaceInfo | null> {
  return (await ctl.listWorkspaces()).find((w) => w.sandbox_id === sandboxId && w.status === 'suspended') ?? null;
}

/** Every paused sandbox (suspended workspaces). */
export async function pausedWorkspaces(ctl: Controller): Promise<WorkspaceInfo[]> {
  return (await ctl.listWorkspaces()).filter((w) => w.status === 'suspended');
}

/** E2B semantics: true if this call paused it, false if it was already paused. */
export async function pauseSandbox(ctl: Controller, sandboxId: string): Promise<boolean> {
  let info: SandboxInfo;
  try {
    info = await ctl.getSandbox(sandboxId);
  } catch (e) {
    if (e instanceof NotFoundError && (await pausedWorkspaceOf(ctl, sandboxId))) return false;
    throw e;
  }
  let name = info.workspace;
  if (name === null) {
    try {
      name = (await ctl.createWorkspace({ name: sandboxId, sandbox_id: sandboxId })).name;
    } catch (e) {
      // A concurrent pause() made it a workspace first: suspend that one.
      if (!(e instanceof ConflictError)) throw e;
      name = (await ctl.getSandbox(sandboxId)).workspace;
      if (name === null) throw e;
    }
  }
  try {
    await ctl.suspendWorkspace(name);
  } catch (e) {
    // Suspended meanwhile by someone else: already paused.
    if (e instanceof ConflictError && (await ctl.getWorkspace(name)).status === 'suspended') return false;
    throw e;
  }
  return true;
}

/**
 * A running sandbox's info; a paused one is resumed first (same id). NotFoundError
 * (FORKD_E_SANDBOX_NOT_FOUND) when it is neither running nor paused.
 */
export async function getOrResume(ctl: Controller, sandboxId: string): Promise<SandboxInfo> {
  try {
    return await ctl.getSandbox(sandboxId);
  } catch (e) {
    if (!(e instanceof NotFoundError)) throw e;
    const ws = await pausedWorkspaceOf(ctl, sandboxId);
    if (!ws) throw e;
    try {
      await ctl.resumeWorkspace(ws.name);
    } catch (r) {
      // A concurrent connect() resumed it first; the sandbox is then there.
      if (!(r instanceof ConflictError)) throw r;
    }
    return ctl.getSandbox(sandboxId);
  }
}

/**
 * Kills a running or paused sandbox: true if there was one. A workspace made by pause() (named
 * after the sandbox id) is deleted with it, state snapshots included, as E2B's kill removes a
 * paused sandbox for good. A workspace the user named is left to its owner: its running VM is
 * killed as the daemon does it, and a suspended one is a ConflictError (delete the workspace).
 */
export async function killSandboxOrPaused(ctl: Controller, sandboxId: string): Promise<boolean> {
  let info: SandboxInfo | null = null;
  try {
    info = await ctl.getSandbox(sandboxId);
  } catch (e) {
    if (!(e instanceof NotFoundError)) throw e;
  }
  const paused = info ? null : await pausedWorkspaceOf(ctl, sandboxId);
  if (paused && paused.name !== sandboxId) {
    throw errorFor('FORKD_E_CONFLICT', `sandbox ${sandboxId} is paused in workspace ${paused.name}; delete the workspace to remove it`, { workspace: paused.name });
  }
  try {
    if (info?.workspace === sandboxId || paused) await ctl.deleteWorkspace(sandboxId);
    else if (info) await ctl.killSandbox(sandboxId);
    else return false;
    return true;
  } catch (e) {
    if (e instanceof NotFoundError) return false;
    throw e;
  }
}

/** E2B's pause({keepMemory: false}) makes a disk-only snapshot; forkd always keeps memory. */
export function checkPauseOpts(opts: { keepMemory?: boolean }): void {
  if (opts.keepMemory === false) throw errorFor('FORKD_E_INVALID_ARGUMENT', 'pause({ keepMemory: false }) is not supported: forkd always saves memory, devices and disk');
}
