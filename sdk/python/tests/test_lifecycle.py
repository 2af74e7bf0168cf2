"""Integration: sandboxes through the daemon (spawn, connect, list, kill, timeouts, envs, errors)."""
import os
import time
import unittest

import _support
import forkd


class MetaTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.tag = _support.fixture_tag()
        cls.ctl = forkd.Controller()

    def test_health_version_metrics_openapi(self) -> None:
        self.assertEqual(self.ctl.health(), {"ok": True})
        v = self.ctl.version()
        self.assertEqual(v["api"], "v1")
        self.assertEqual(v["version"], forkd.__version__)
        self.assertIn("# TYPE", self.ctl.metrics())
        doc = self.ctl.openapi()
        self.assertTrue(doc["openapi"].startswith("3.1"))
        self.assertIn("/v1/sandboxes/{id}/exec", doc["paths"])

    def test_snapshot_reads(self) -> None:
        tags = [s["tag"] for s in self.ctl.list_snapshots()]
        self.assertIn(self.tag, tags)
        s = self.ctl.get_snapshot(self.tag)
        self.assertEqual((s["tag"], s["language"], s["bootable"]), (self.tag, "python", True))
        info = self.ctl.snapshot_info(self.tag)
        self.assertEqual(info["tag"], self.tag)
        self.assertIn("ancestors", info)

        def walk(nodes):  # type: ignore[no-untyped-def]
            for n in nodes:
                yield n["tag"]
                yield from walk(n["children"])

        self.assertIn(self.tag, list(walk(self.ctl.snapshot_tree()["roots"])))

    def test_unknown_and_invalid_names_are_typed_errors(self) -> None:
        with self.assertRaises(forkd.NotFoundError) as cm:
            self.ctl.get_snapshot("no-such-snapshot-xyz")
        self.assertEqual(cm.exception.code, "FORKD_E_SNAPSHOT_NOT_FOUND")
        with self.assertRaises(forkd.NotFoundError) as cm:
            forkd.Sandbox.create("no-such-snapshot-xyz")
        self.assertEqual((cm.exception.code, cm.exception.status), ("FORKD_E_SNAPSHOT_NOT_FOUND", 404))
        for bad in ("../../etc", "a b", "-x"):
            with self.subTest(tag=bad), self.assertRaises(forkd.InvalidArgumentError) as cm2:
                forkd.Sandbox.create(bad)
            self.assertEqual(cm2.exception.status, 400)
            self.assertTrue(cm2.exception.code.startswith("FORKD_E_INVALID"))
        with self.assertRaises(forkd.NotFoundError) as cm:
            self.ctl.get_job("job-0123456789abcdef")
        self.assertEqual(cm.exception.code, "FORKD_E_JOB_NOT_FOUND")

    def test_unknown_sandbox_id(self) -> None:
        sid = "sb-0123456789abcdef"
        with self.assertRaises(forkd.NotFoundError) as cm:
            forkd.Sandbox.connect(sid)
        e = cm.exception
        self.assertEqual((e.code, e.status), ("FORKD_E_SANDBOX_NOT_FOUND", 404))
        self.assertIn(sid, e.message)
        with self.assertRaises(forkd.NotFoundError):
            self.ctl.exec_command(sid, ["true"])
        self.assertFalse(forkd.Sandbox.kill(sid))
        with self.assertRaises(forkd.InvalidArgumentError):
            forkd.Sandbox.connect("not-an-id")


class LifecycleTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.tag = _support.fixture_tag()

    def test_create_connect_list_kill(self) -> None:
        marker = f"py-{os.getpid()}-{time.time_ns()}"
        a = forkd.Sandbox.create(self.tag, metadata={"suite": marker})
        b = forkd.Sandbox.create(snapshot_tag=self.tag, metadata={"suite": marker, "who": "b"})
        try:
            self.assertNotEqual(a.sandbox_id, b.sandbox_id)
            self.assertRegex(a.sandbox_id, r"^sb-[0-9a-f]{16}$")
            # Two sandboxes on one host, both working at once.
            self.assertEqual(a.commands.run("echo a").stdout, "a\n")
            self.assertEqual(b.commands.run("echo b").stdout, "b\n")
            listed = {i.sandbox_id: i for i in forkd.Sandbox.list(metadata={"suite": marker})}
            self.assertEqual(set(listed), {a.sandbox_id, b.sandbox_id})
            self.assertEqual(listed[b.sandbox_id].metadata, {"suite": marker, "who": "b"})
            self.assertEqual(listed[a.sandbox_id].template_id, self.tag)
            self.assertEqual(listed[a.sandbox_id].state, "running")
            self.assertIn(a.sandbox_id, [i.sandbox_id for i in forkd.Sandbox.list(tag=self.tag)])
            info = a.get_info()
            self.assertIsNotNone(info.end_at, "E2B default: a 300 s lifetime")
            assert info.end_at is not None
            self.assertAlmostEqual(info.end_at.timestamp() - time.time(), 300, delta=30)

            again = forkd.Sandbox.connect(a.sandbox_id)
            self.assertEqual(again.commands.run("echo again").stdout, "again\n")
            self.assertTrue(again.is_running())

            self.assertTrue(a.kill())
            self.assertFalse(a.is_running())
            self.assertFalse(a.kill(), "a second kill finds nothing")
            with self.assertRaises(forkd.NotFoundError):
                forkd.Sandbox.connect(a.sandbox_id)
            self.assertTrue(forkd.Sandbox.kill(b.sandbox_id))
            self.assertEqual(forkd.Sandbox.list(metadata={"suite": marker}), [])
        finally:
            a.kill()
            b.kill()

    def test_context_manager_kills_on_exit(self) -> None:
        with forkd.Sandbox.create(self.tag) as sb:
            sid = sb.sandbox_id
            self.assertTrue(sb.is_running())
        with self.assertRaises(forkd.NotFoundError):
            forkd.Sandbox.connect(sid)

    def test_envs_at_create_reach_commands_and_code(self) -> None:
        with forkd.Sandbox.create(self.tag, envs={"FORKD_PY_TEST": "v1", "OTHER": "o"}) as sb:
            self.assertEqual(sb.commands.run("echo $FORKD_PY_TEST-$OTHER").stdout, "v1-o\n")
            self.assertEqual(sb.commands.run("echo $FORKD_PY_TEST", envs={"FORKD_PY_TEST": "call"}).stdout, "call\n")
            self.assertEqual(sb.eval("import os; os.environ['FORKD_PY_TEST']"), "v1")

    def test_set_timeout_kills_after_expiry(self) -> None:
        sb = forkd.Sandbox.create(self.tag, timeout=0)
        try:
            self.assertIsNone(sb.get_info().end_at, "timeout=0: no lifetime limit")
            sb.set_timeout(2000)
            end_at = sb.get_info().end_at
            assert end_at is not None
            self.assertAlmostEqual(end_at.timestamp() - time.time(), 2, delta=1.5)
            self.assertTrue(sb.is_running())
            m = sb.get_metrics()[-1]
            self.assertTrue(m.cpu_count >= 1 and 0 < m.mem_used < m.mem_total and m.disk_total > 0, m)
            self.assertGreater(m.host["rss_bytes"], 0)
            deadline = time.monotonic() + 20
            while sb.is_running() and time.monotonic() < deadline:
                time.sleep(0.25)
            self.assertFalse(sb.is_running(), "the daemon killed it at the timeout")
            with self.assertRaises(forkd.NotFoundError):
                forkd.Sandbox.connect(sb.sandbox_id)
            # Its lifecycle events: the live generator (catching up from the oldest kept; the end's
            # event is journaled just after the sandbox is gone from the list), then a page.
            seen = []
            for e in sb.events(since=-1):
                seen.append(e["kind"])
                if e["kind"] == "timed_out":
                    break
            self.assertEqual(seen, ["created", "timed_out"])
            kinds = [e["kind"] for e in sb.controller.events_page(since=-1, sandbox_ids=[sb.sandbox_id])["events"]]
            self.assertEqual(kinds, ["created", "timed_out"])
        finally:
            sb.kill()

    def test_set_timeout_class_form_and_validation(self) -> None:
        with forkd.Sandbox.create(self.tag, timeout_ms=60_000) as sb:
            forkd.Sandbox.set_timeout(sb.sandbox_id, timeout=120)
            end_at = forkd.Sandbox.get_info(sb.sandbox_id).end_at
            assert end_at is not None
            self.assertAlmostEqual(end_at.timestamp() - time.time(), 120, delta=10)
            with self.assertRaises(forkd.InvalidArgumentError):
                sb.set_timeout(10)  # below the daemon's 1 s minimum


class UnixSocketTest(unittest.TestCase):
    """The same daemon through its Unix socket."""

    def test_spawn_and_run_over_the_unix_socket(self) -> None:
        tag = _support.fixture_tag()
        url = _support.unix_url()
        if url is None:
            raise RuntimeError("set FORKD_TEST_UNIX_URL=unix:/path/forkd.sock (the daemon's socket) or make FORKD_URL a unix: URL")
        ctl = forkd.Controller(url=url)
        self.assertEqual(ctl.endpoint.scheme, "unix")
        self.assertEqual(ctl.health(), {"ok": True})
        with forkd.Sandbox.create(tag, controller=ctl) as sb:
            self.assertEqual(sb.commands.run("echo over-unix").stdout, "over-unix\n")
            sb.files.write("/tmp/u.bin", b"\x00\xffunix")
            self.assertEqual(sb.files.read("/tmp/u.bin", format="bytes"), b"\x00\xffunix")


if __name__ == "__main__":
    unittest.main()
