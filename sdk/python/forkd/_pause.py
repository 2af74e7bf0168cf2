"""E2B's pause / connect-resumes / kill-a-paused-sandbox, on the daemon's workspaces.

A paused sandbox is a suspended workspace: pause() makes the sandbox a workspace named after its
own id (unless it already belongs to one) and suspends it, which saves memory, devices and disk as
a snapshot layer and stops the VM. Resuming restores the same sandbox id, envs and metadata.
(The same rules as packages/sdk/src/pause.ts.)
"""
from typing import List, Optional

from .controller import JSON, Controller
from .errors import ConflictError, NotFoundError, error_for


def paused_workspace_of(ctl: Controller, sandbox_id: str) -> Optional[JSON]:
    """The suspended workspace holding this sandbox id, if any (the sandbox is then paused)."""
    for w in ctl.list_workspaces():
        if w.get("sandbox_id") == sandbox_id and w.get("status") == "suspended":
            return w
    return None


def paused_workspaces(ctl: Controller) -> List[JSON]:
    return [w for w in ctl.list_workspaces() if w.get("status") == "suspended"]


def pause_sandbox(ctl: Controller, sandbox_id: str) -> bool:
    """E2B semantics: True if this call paused it, False if it was already paused."""
    try:
        info = ctl.get_sandbox(sandbox_id)
    except NotFoundError:
        if paused_workspace_of(ctl, sandbox_id) is not None:
            return False
        raise
    name = info.get("workspace")
    if name is None:
        try:
            name = ctl.create_workspace(sandbox_id, sandbox_id=sandbox_id)["name"]
        except ConflictError:
            # A concurrent pause() made it a workspace first: suspend that one.
            name = ctl.get_sandbox(sandbox_id).get("workspace")
            if name is None:
                raise
    try:
        ctl.suspend_workspace(name)
    except ConflictError:
        # Suspended meanwhile by someone else: already paused.
        if ctl.get_workspace(name).get("status") == "suspended":
            return False
        raise
    return True


def get_or_resume(ctl: Controller, sandbox_id: str) -> JSON:
    """A running sandbox's info; a paused one is resumed first (same id). NotFoundError if neither."""
    try:
        return ctl.get_sandbox(sandbox_id)
    except NotFoundError:
        ws = paused_workspace_of(ctl, sandbox_id)
        if ws is None:
            raise
    try:
        ctl.resume_workspace(ws["name"])
    except ConflictError:
        pass  # a concurrent connect() resumed it first; the sandbox is then there
    return ctl.get_sandbox(sandbox_id)


def kill_sandbox_or_paused(ctl: Controller, sandbox_id: str) -> bool:
    """Kills a running or paused sandbox: True if there was one.

    The workspace pause() made (named after the sandbox id) is deleted with it, saved state
    included, as E2B's kill removes a paused sandbox for good. A workspace the user named is left
    to its owner: its running VM is killed as the daemon does it; paused in it is a ConflictError.
    """
    info: Optional[JSON] = None
    try:
        info = ctl.get_sandbox(sandbox_id)
    except NotFoundError:
        pass
    paused = None if info is not None else paused_workspace_of(ctl, sandbox_id)
    if paused is not None and paused["name"] != sandbox_id:
        raise error_for("FORKD_E_CONFLICT", f"sandbox {sandbox_id} is paused in workspace {paused['name']}; delete the workspace to remove it", {"workspace": paused["name"]})
    try:
        if paused is not None or (info is not None and info.get("workspace") == sandbox_id):
            ctl.delete_workspace(sandbox_id)
        elif info is not None:
            ctl.kill_sandbox(sandbox_id)
        else:
            return False
        return True
    except NotFoundError:
        return False
