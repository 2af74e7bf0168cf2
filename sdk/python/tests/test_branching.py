"""Integration: fork, create_snapshot, pause and connect-resumes (real daemon, real VMs).

Every snapshot layer and workspace made here is removed in tearDownClass.
"""
import os
import time
import unittest
from typing import List, Set

import _support
import forkd


class BranchingTest(unittest.TestCase):
    tag: str
    ctl: forkd.Controller
    prefix: str
    mine: Set[str]

    @classmethod
    def setUpClass(cls) -> None:
        cls.tag = _support.fixture_tag()
        cls.ctl = forkd.Controller()
        cls.prefix = f"pyb-{os.getpid()}-{time.time_ns() % 10**9}"
        cls.mine = set()

    @classmethod
    def tearDownClass(cls) -> None:
        for sid in cls.mine:
            for undo in (cls.ctl.delete_workspace, cls.ctl.kill_sandbox):
                try:
                    undo(sid)
                except forkd.NotFoundError:
                    pass

        def ours(s: dict) -> bool:  # type: ignore[type-arg]
            return s["tag"].startswith(cls.prefix) or any(s.get("branched_from") == f"sandbox:{sid}" for sid in cls.mine)

        for s in [s for s in cls.ctl.list_snapshots() if ours(s)]:
            try:
                cls.ctl.delete_snapshot(s["tag"], cascade=True, force=True)
            except forkd.NotFoundError:
                pass  # went with its parent's cascade
        left = [s["tag"] for s in cls.ctl.list_snapshots() if ours(s)]
        if left:
            raise AssertionError(f"snapshot layers left behind: {left}")

    def create(self, tag: str = "", **kw: object) -> forkd.Sandbox:
        sb = forkd.Sandbox.create(tag or self.tag, **kw)  # type: ignore[arg-type]
        self.mine.add(sb.sandbox_id)
        return sb

    def test_fork_children_have_the_state_at_the_fork_only(self) -> None:
        src = self.create(envs={"FORK_ENV": "inherited"}, metadata={"suite": self.prefix})
        src.run_code("fork_v = 7\nfork_list = ['a']")
        src.files.write("/root/fork.txt", "before-fork")
        kids = src.fork(2, metadata={"role": "child"}, vary={"temperature": [0.1, 0.9]}, seeds=[11, 22])
        self.mine.update(k.sandbox_id for k in kids)
        src.run_code("fork_v = 0\nfork_list.append('after')")
        src.files.write("/root/fork.txt", "after-fork")

        self.assertEqual(len(kids), 2)
        self.assertEqual(len({src.sandbox_id, *(k.sandbox_id for k in kids)}), 3)
        for k in kids:
            self.assertIsInstance(k, forkd.Sandbox)
            self.assertEqual(k.eval("fork_v"), 7)
            self.assertEqual(k.eval("fork_list"), ["a"])
            self.assertEqual(k.eval("forkd_parent_marker"), 424242)
            self.assertEqual(k.files.read("/root/fork.txt"), "before-fork")
            self.assertEqual(k.commands.run("echo $FORK_ENV").stdout, "inherited\n")
            # fork with variations: child i has its value (interpreter, environment) and seed.
            i = kids.index(k)
            self.assertEqual(k.variant, {"index": i, "values": {"temperature": [0.1, 0.9][i]}, "seed": [11, 22][i]})
            self.assertEqual(k.eval("temperature"), [0.1, 0.9][i])
            self.assertEqual(k.commands.run("echo $temperature $FORKD_SEED").stdout, f"{[0.1, 0.9][i]} {[11, 22][i]}\n")
            info = k.get_info()
            self.assertEqual(info.metadata, {"suite": self.prefix, "role": "child"})
            assert info.end_at is not None
            self.assertAlmostEqual(info.end_at.timestamp() - time.time(), 300, delta=30)
        kids[0].run_code("fork_v = 100")
        self.assertEqual(kids[1].eval("fork_v"), 7, "children diverge on their own")
        self.assertEqual(src.eval("fork_v"), 0)
        self.assertTrue(src.is_running())
        layer = self.ctl.snapshot_info(kids[0].get_info().template_id)
        self.assertEqual((layer["parent_tag"], layer["branched_from"]), (self.tag, f"sandbox:{src.sandbox_id}"))

    def test_create_snapshot_then_create_from_it(self) -> None:
        src = self.create()
        src.run_code("snap_v = 'at-snapshot'")
        src.commands.run("echo disk-at-snapshot > /root/snap.txt")
        name = f"{self.prefix}-named"
        snap = src.create_snapshot(name)
        self.assertEqual((snap.snapshot_id, snap.names), (name, [name]))
        self.assertEqual((snap.raw["parent_tag"], snap.raw["status"]), (self.tag, "ready"))
        src.run_code("snap_v = 'later'")

        child = self.create(snap.snapshot_id)
        self.assertEqual(child.eval("snap_v"), "at-snapshot")
        self.assertEqual(child.commands.run("cat /root/snap.txt").stdout, "disk-at-snapshot\n")
        self.assertEqual(child.get_info().template_id, name)
        self.assertEqual(src.eval("snap_v"), "later", "the source runs on")

        unnamed = src.create_snapshot()
        self.assertTrue(unnamed.snapshot_id.startswith("branch-"), unnamed.snapshot_id)
        self.assertEqual(self.create(unnamed.snapshot_id).eval("snap_v"), "later")
        with self.assertRaises(forkd.ConflictError) as cm:
            src.create_snapshot(name)
        self.assertEqual(cm.exception.code, "FORKD_E_SNAPSHOT_EXISTS")

    def test_pause_then_connect_resumes_the_same_sandbox(self) -> None:
        sb = self.create(envs={"PAUSE_ENV": "kept"}, metadata={"suite": self.prefix, "role": "paused"})
        sb.run_code("paused_v = {'k': [1, 2]}")
        sb.files.write("/root/paused.txt", "file-kept")

        self.assertTrue(sb.pause())
        self.assertFalse(sb.is_running())
        self.assertFalse(sb.pause(), "already paused")
        self.assertEqual(forkd.Sandbox.list(metadata={"suite": self.prefix, "role": "paused"}), [], "not listed as running")
        paused = forkd.Sandbox.list(metadata={"suite": self.prefix, "role": "paused"}, state=("paused",))
        self.assertEqual([(p.sandbox_id, p.state, p.template_id, p.language) for p in paused], [(sb.sandbox_id, "paused", self.tag, "python")])

        back = forkd.Sandbox.connect(sb.sandbox_id)
        self.assertEqual(back.sandbox_id, sb.sandbox_id)
        self.assertEqual(back.eval("paused_v"), {"k": [1, 2]})
        self.assertEqual(back.files.read("/root/paused.txt"), "file-kept")
        self.assertEqual(back.commands.run("echo $PAUSE_ENV").stdout, "kept\n")
        self.assertEqual(back.get_info().metadata, {"suite": self.prefix, "role": "paused"})
        self.assertTrue(sb.is_running(), "the old handle works again: same id")

        back.run_code("paused_v['k'].append(3)")
        self.assertTrue(back.pause())
        self.assertIs(back.connect(), back)
        self.assertEqual(back.eval("paused_v"), {"k": [1, 2, 3]})

        state_tags: List[str] = [s["tag"] for s in self.ctl.list_snapshots() if s["tag"].startswith(f"ws-{sb.sandbox_id}-")]
        self.assertTrue(state_tags, "the suspends saved state layers")
        self.assertTrue(back.kill())
        with self.assertRaises(forkd.NotFoundError) as cm:
            self.ctl.get_workspace(sb.sandbox_id)
        self.assertEqual(cm.exception.code, "FORKD_E_WORKSPACE_NOT_FOUND")
        self.assertEqual([s["tag"] for s in self.ctl.list_snapshots() if s["tag"] in state_tags], [], "kill removed the saved state")
        with self.assertRaises(forkd.NotFoundError):
            forkd.Sandbox.connect(sb.sandbox_id)

    def test_kill_of_a_paused_sandbox_by_id(self) -> None:
        sb = self.create()
        self.assertTrue(sb.pause())
        self.assertTrue(forkd.Sandbox.kill(sb.sandbox_id))
        self.assertFalse(forkd.Sandbox.kill(sb.sandbox_id))
        self.assertEqual([s for s in self.ctl.list_snapshots() if s["tag"].startswith(f"ws-{sb.sandbox_id}-")], [])

    def test_typed_errors_for_a_killed_sandbox_and_bad_arguments(self) -> None:
        sb = self.create()
        self.assertTrue(sb.kill())
        for name, call in (("fork", lambda: sb.fork(2)), ("create_snapshot", sb.create_snapshot), ("pause", sb.pause), ("connect", sb.connect)):
            with self.subTest(call=name), self.assertRaises(forkd.NotFoundError) as cm:
                call()
            self.assertEqual(cm.exception.code, "FORKD_E_SANDBOX_NOT_FOUND")
            self.assertIn(sb.sandbox_id, cm.exception.message)
        live = self.create()
        with self.assertRaises(forkd.InvalidArgumentError) as cm2:
            live.fork(101)
        self.assertEqual(cm2.exception.code, "FORKD_E_INVALID_ARGUMENT")
        with self.assertRaises(forkd.InvalidArgumentError):
            live.create_snapshot("bad name!")
        with self.assertRaises(forkd.InvalidArgumentError):
            live.pause(keep_memory=False)
        self.assertTrue(live.is_running(), "a refused pause leaves it running")


if __name__ == "__main__":
    unittest.main()
