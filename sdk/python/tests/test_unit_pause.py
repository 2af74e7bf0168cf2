"""Unit tests (no VM): pause / connect-resumes / kill on workspaces, against a fake Controller.

Which workspace is used, what counts as already paused, and what kill() removes (the same table
as packages/sdk/src/pause.test.ts).
"""
import unittest
from typing import Any, Dict, List, Optional

import _support  # noqa: F401  (puts the SDK on sys.path)
import forkd
from forkd import _pause

SID = "sb-0123456789abcdef"


class FakeController:
    """A daemon with running sandboxes and workspaces; records the calls that change anything."""

    def __init__(self, running: Dict[str, Optional[str]], workspaces: List[Dict[str, Any]]) -> None:
        self.sandboxes = dict(running)  # id -> workspace name
        self.workspaces = {w["name"]: dict(w) for w in workspaces}
        self.calls: List[str] = []

    def get_sandbox(self, sid: str) -> Dict[str, Any]:
        if sid not in self.sandboxes:
            raise forkd.error_for("FORKD_E_SANDBOX_NOT_FOUND", f"no sandbox {sid}")
        return {"id": sid, "workspace": self.sandboxes[sid]}

    def list_workspaces(self) -> List[Dict[str, Any]]:
        return list(self.workspaces.values())

    def get_workspace(self, name: str) -> Dict[str, Any]:
        if name not in self.workspaces:
            raise forkd.error_for("FORKD_E_WORKSPACE_NOT_FOUND", f"no workspace {name}")
        return self.workspaces[name]

    def create_workspace(self, name: str, snapshot_tag: Optional[str] = None, *, sandbox_id: str) -> Dict[str, Any]:
        self.calls.append(f"create {name}")
        self.workspaces[name] = {"name": name, "sandbox_id": sandbox_id, "status": "running"}
        self.sandboxes[sandbox_id] = name
        return self.workspaces[name]

    def suspend_workspace(self, name: str) -> Dict[str, Any]:
        self.calls.append(f"suspend {name}")
        w = self.workspaces[name]
        if w["status"] != "running":
            raise forkd.error_for("FORKD_E_CONFLICT", "not running")
        w["status"] = "suspended"
        del self.sandboxes[w["sandbox_id"]]
        return w

    def resume_workspace(self, name: str) -> Dict[str, Any]:
        self.calls.append(f"resume {name}")
        w = self.workspaces[name]
        w["status"] = "running"
        self.sandboxes[w["sandbox_id"]] = name
        return w

    def delete_workspace(self, name: str) -> None:
        self.calls.append(f"delete-ws {name}")
        w = self.workspaces.pop(name, None)
        if w is None:
            raise forkd.error_for("FORKD_E_WORKSPACE_NOT_FOUND", f"no workspace {name}")
        self.sandboxes.pop(w["sandbox_id"], None)

    def kill_sandbox(self, sid: str) -> None:
        self.calls.append(f"kill {sid}")
        if self.sandboxes.pop(sid, "absent") == "absent":
            raise forkd.error_for("FORKD_E_SANDBOX_NOT_FOUND", f"no sandbox {sid}")


class PauseTest(unittest.TestCase):
    def test_a_plain_sandbox_becomes_a_workspace_named_after_its_id_then_suspended(self) -> None:
        c = FakeController({SID: None}, [])
        self.assertTrue(_pause.pause_sandbox(c, SID))  # type: ignore[arg-type]
        self.assertEqual(c.calls, [f"create {SID}", f"suspend {SID}"])
        self.assertFalse(_pause.pause_sandbox(c, SID), "already paused")  # type: ignore[arg-type]
        self.assertEqual(len(c.calls), 2)

    def test_a_sandbox_of_a_named_workspace_suspends_that_workspace(self) -> None:
        c = FakeController({SID: "proj"}, [{"name": "proj", "sandbox_id": SID, "status": "running"}])
        self.assertTrue(_pause.pause_sandbox(c, SID))  # type: ignore[arg-type]
        self.assertEqual(c.calls, ["suspend proj"])

    def test_unknown_sandbox(self) -> None:
        with self.assertRaises(forkd.NotFoundError) as cm:
            _pause.pause_sandbox(FakeController({}, []), SID)  # type: ignore[arg-type]
        self.assertEqual(cm.exception.code, "FORKD_E_SANDBOX_NOT_FOUND")

    def test_keep_memory_false_is_refused_before_any_call(self) -> None:
        c = FakeController({SID: None}, [])
        sb = forkd.Sandbox(SID, c)  # type: ignore[arg-type]
        with self.assertRaises(forkd.InvalidArgumentError):
            sb.pause(keep_memory=False)
        self.assertEqual(c.calls, [])


class ConnectTest(unittest.TestCase):
    def test_running_attached_paused_resumed_unknown_not_found(self) -> None:
        other = "sb-1111111111111111"
        c = FakeController({SID: None}, [{"name": "proj", "sandbox_id": other, "status": "suspended"}])
        self.assertEqual(forkd.Sandbox.connect(SID, controller=c).sandbox_id, SID)  # type: ignore[arg-type]
        self.assertEqual(forkd.Sandbox.connect(other, controller=c).sandbox_id, other)  # type: ignore[arg-type]
        self.assertEqual(c.calls, ["resume proj"])
        with self.assertRaises(forkd.NotFoundError):
            forkd.Sandbox.connect("sb-2222222222222222", controller=c)  # type: ignore[arg-type]


class KillTest(unittest.TestCase):
    def test_the_workspace_pause_made_is_deleted_running_or_paused(self) -> None:
        c = FakeController({}, [{"name": SID, "sandbox_id": SID, "status": "suspended"}])
        self.assertTrue(forkd.Sandbox.kill(SID, controller=c))  # type: ignore[arg-type]
        self.assertEqual(c.calls, [f"delete-ws {SID}"])
        self.assertFalse(forkd.Sandbox.kill(SID, controller=c))  # type: ignore[arg-type]
        c = FakeController({SID: SID}, [{"name": SID, "sandbox_id": SID, "status": "running"}])
        self.assertTrue(forkd.Sandbox(SID, c).kill())  # type: ignore[arg-type]
        self.assertEqual(c.calls, [f"delete-ws {SID}"])

    def test_a_plain_sandbox_is_killed(self) -> None:
        c = FakeController({SID: None}, [])
        self.assertTrue(forkd.Sandbox(SID, c).kill())  # type: ignore[arg-type]
        self.assertEqual(c.calls, [f"kill {SID}"])

    def test_a_workspace_the_user_named_is_not_deleted(self) -> None:
        c = FakeController({SID: "proj"}, [{"name": "proj", "sandbox_id": SID, "status": "running"}])
        self.assertTrue(forkd.Sandbox(SID, c).kill())  # type: ignore[arg-type]
        self.assertEqual(c.calls, [f"kill {SID}"])
        c = FakeController({}, [{"name": "proj", "sandbox_id": SID, "status": "suspended"}])
        with self.assertRaises(forkd.ConflictError) as cm:
            forkd.Sandbox(SID, c).kill()  # type: ignore[arg-type]
        self.assertEqual((cm.exception.code, cm.exception.details), ("FORKD_E_CONFLICT", {"workspace": "proj"}))
        self.assertEqual(c.calls, [])


if __name__ == "__main__":
    unittest.main()
