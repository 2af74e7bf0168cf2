"""Integration: sandbox.commands (exit codes, streaming, background processes, timeouts)."""
import time
import unittest

import _support
import forkd


class CommandsTest(_support.SandboxTestCase):
    def test_result_of_a_successful_command(self) -> None:
        r = self.sb.commands.run("echo out; echo err >&2")
        self.assertIsInstance(r, forkd.CommandResult)
        self.assertEqual((r.stdout, r.stderr, r.exit_code, r.error), ("out\n", "err\n", 0, None))

    def test_non_zero_exit_raises_command_exit_error(self) -> None:
        with self.assertRaises(forkd.CommandExitError) as cm:
            self.sb.commands.run("echo partial; echo bad >&2; exit 3")
        e = cm.exception
        self.assertEqual((e.exit_code, e.stdout, e.stderr), (3, "partial\n", "bad\n"))
        self.assertIsInstance(e, forkd.ForkdError)
        self.assertEqual(e.code, "FORKD_E_COMMAND_FAILED")
        with self.assertRaises(forkd.CommandExitError) as cm:
            self.sb.commands.run("no-such-binary-forkd")
        self.assertEqual(cm.exception.exit_code, 127)

    def test_shell_features_cwd_stdin_envs(self) -> None:
        self.assertEqual(self.sb.commands.run("echo a && echo b | tr b c").stdout, "a\nc\n")
        self.assertEqual(self.sb.commands.run("pwd", cwd="/tmp").stdout, "/tmp\n")
        self.assertEqual(self.sb.commands.run("cat", stdin="from stdin").stdout, "from stdin")
        self.assertEqual(self.sb.commands.run("echo $A$B", envs={"A": "x", "B": "y"}).stdout, "xy\n")
        with self.assertRaises(forkd.CommandExitError) as cm:
            self.sb.commands.run("pwd", cwd="/no/such/dir")
        self.assertIn("/no/such/dir", cm.exception.error or cm.exception.stderr)

    def test_streaming_callbacks_get_output_as_it_is_produced(self) -> None:
        got = []
        t0 = time.monotonic()
        r = self.sb.commands.run(
            "echo first; sleep 3; echo oops >&2; echo second",
            on_stdout=lambda d: got.append(("out", d, time.monotonic() - t0)),
            on_stderr=lambda d: got.append(("err", d, time.monotonic() - t0)),
        )
        total = time.monotonic() - t0
        self.assertEqual("".join(d for k, d, _ in got if k == "out"), "first\nsecond\n")
        self.assertEqual("".join(d for k, d, _ in got if k == "err"), "oops\n")
        self.assertEqual((r.stdout, r.stderr), ("first\nsecond\n", "oops\n"))
        first_at = got[0][2]
        self.assertEqual(got[0][1], "first\n")
        self.assertLess(first_at, total - 1.5, f"first chunk at {first_at:.2f}s of {total:.2f}s: not streamed")

    def test_a_callback_exception_stops_the_call(self) -> None:
        class Stop(Exception):
            pass

        def boom(_: str) -> None:
            raise Stop()

        with self.assertRaises(Stop):
            self.sb.commands.run("echo x; sleep 20", on_stdout=boom)

    def test_foreground_timeout(self) -> None:
        t0 = time.monotonic()
        with self.assertRaises(forkd.TimeoutError) as cm:
            self.sb.commands.run("echo started; sleep 30", timeout=1)
        self.assertLess(time.monotonic() - t0, 15)
        self.assertEqual(cm.exception.code, "FORKD_E_TIMEOUT")
        self.assertEqual(cm.exception.details.get("stdout"), "started\n")
        self.assertEqual(self.sb.commands.run("echo still-usable").stdout, "still-usable\n")

    def test_background_wait(self) -> None:
        seen = []
        h = self.sb.commands.run("echo bg; sleep 0.5; echo done", background=True, on_stdout=seen.append)
        self.assertIsInstance(h, forkd.CommandHandle)
        self.assertGreater(h.pid, 0)
        r = h.wait()
        self.assertEqual((r.stdout, r.exit_code), ("bg\ndone\n", 0))
        self.assertEqual((h.stdout, h.exit_code), ("bg\ndone\n", 0))
        self.assertEqual("".join(seen), "bg\ndone\n")
        failing = self.sb.commands.run("echo e >&2; exit 4", background=True)
        with self.assertRaises(forkd.CommandExitError) as cm:
            failing.wait()
        self.assertEqual((cm.exception.exit_code, cm.exception.stderr), (4, "e\n"))

    def test_background_list_and_kill(self) -> None:
        h = self.sb.commands.run("sleep 60", background=True)
        procs = {p.pid: p for p in self.sb.commands.list()}
        self.assertIn(h.pid, procs)
        self.assertTrue(procs[h.pid].running)
        self.assertEqual(procs[h.pid].cmd, "sleep 60")
        with self.assertRaises(forkd.TimeoutError):
            h.wait(timeout=1)
        t0 = time.monotonic()
        self.assertTrue(h.kill())
        with self.assertRaises(forkd.CommandExitError) as cm:
            h.wait()
        self.assertIsNone(cm.exception.exit_code, "killed by a signal: no exit code")
        self.assertLess(time.monotonic() - t0, 10)
        self.assertFalse(h.kill(), "already gone")
        self.assertFalse([p for p in self.sb.commands.list() if p.pid == h.pid and p.running])

    def test_kill_and_connect_by_pid(self) -> None:
        h = self.sb.commands.run("sleep 60", background=True)
        again = self.sb.commands.connect(h.pid)
        self.assertEqual(again.handle, h.handle)
        self.assertTrue(self.sb.commands.kill(h.pid))
        self.assertFalse(self.sb.commands.kill(999999))
        with self.assertRaises(forkd.NotFoundError):
            self.sb.commands.connect(999999)

    def test_background_timeout_kills_the_command(self) -> None:
        h = self.sb.commands.run("sleep 60", background=True, timeout=1)
        t0 = time.monotonic()
        with self.assertRaises(forkd.TimeoutError) as cm:
            h.wait()
        self.assertLess(time.monotonic() - t0, 15)
        self.assertIn("killed at its timeout", cm.exception.message)

    def test_controller_exec_argv_and_collected(self) -> None:
        ctl = self.sb.controller
        r = ctl.exec_command(self.sb.sandbox_id, ["sh", "-c", "echo $0 && exit 2", "argv0"])
        self.assertEqual((r["stdout"], r["exit_code"], r["timed_out"]), ("argv0\n", 2, False))
        r = ctl.exec_command(self.sb.sandbox_id, "echo shell-line")
        self.assertEqual(r["stdout"], "shell-line\n")
        with self.assertRaises(forkd.InvalidArgumentError):
            ctl.exec_command(self.sb.sandbox_id)
        r = ctl.exec_command(self.sb.sandbox_id, ["sleep", "10"], timeout_secs=0.5)
        self.assertTrue(r["timed_out"])


if __name__ == "__main__":
    unittest.main()
