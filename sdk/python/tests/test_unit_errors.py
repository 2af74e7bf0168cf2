"""Unit tests (no VM): the FORKD_E_* table, error classes, response mapping."""
import builtins
import os
import pickle
import re
import unittest

import _support
import forkd
from forkd.errors import _BY_STATUS, class_for_status

EXPECTED_CLASS = {
    400: forkd.InvalidArgumentError,
    401: forkd.AuthenticationError,
    403: forkd.ForbiddenError,
    404: forkd.NotFoundError,
    409: forkd.ConflictError,
    413: forkd.PayloadTooLargeError,
    429: forkd.RateLimitError,
    500: forkd.InternalError,
    501: forkd.NotImplementedError,
    502: forkd.SandboxError,
    503: forkd.UnavailableError,
    504: forkd.TimeoutError,
    507: forkd.InternalError,  # no class of its own: callers match FORKD_E_INSUFFICIENT_STORAGE
}


class CodeTableTest(unittest.TestCase):
    def test_table_matches_the_protocol_package(self) -> None:
        src = os.path.join(_support.REPO_DIR, "packages", "protocol", "src", "errors.ts")
        with open(src, encoding="utf-8") as f:
            text = f.read()
        block = text[text.index("export const ERROR_CODES"):]
        block = block[: block.index("} as const")]
        ts = {m.group(1): int(m.group(2)) for m in re.finditer(r"(FORKD_E_[A-Z_]+):\s*(\d+)", block)}
        self.assertGreater(len(ts), 30)
        self.assertEqual(forkd.ERROR_CODES, ts)

    def test_status_classes_match_the_typescript_sdk(self) -> None:
        src = os.path.join(_support.REPO_DIR, "packages", "sdk", "src", "errors.ts")
        with open(src, encoding="utf-8") as f:
            text = f.read()
        ts = {int(s): name for s, name in re.findall(r"\[(\d{3}), (\w+Error)\]", text)}
        self.assertEqual({s: c.__name__ for s, c in _BY_STATUS}, ts)

    def test_every_code_maps_to_the_class_of_its_status(self) -> None:
        for code, status in forkd.ERROR_CODES.items():
            with self.subTest(code=code):
                e = forkd.error_for(code, "m", {"k": 1})
                self.assertIs(type(e), EXPECTED_CLASS[status])
                self.assertIsInstance(e, forkd.ForkdError)
                self.assertEqual((e.code, e.status, e.message, e.details), (code, status, "m", {"k": 1}))

    def test_unknown_status_is_internal(self) -> None:
        self.assertIs(class_for_status(418), forkd.InternalError)
        self.assertIs(class_for_status(500), forkd.InternalError)


class ErrorFromResponseTest(unittest.TestCase):
    def test_error_body(self) -> None:
        e = forkd.error_from_response(404, {"error": {"code": "FORKD_E_SANDBOX_NOT_FOUND", "message": "no sandbox sb-1", "details": {"id": "sb-1"}}})
        self.assertIsInstance(e, forkd.NotFoundError)
        self.assertEqual((e.code, e.status, e.message, e.details), ("FORKD_E_SANDBOX_NOT_FOUND", 404, "no sandbox sb-1", {"id": "sb-1"}))
        self.assertEqual(str(e), "FORKD_E_SANDBOX_NOT_FOUND: no sandbox sb-1")

    def test_the_code_decides_the_class_and_the_response_the_status(self) -> None:
        e = forkd.error_from_response(500, {"error": {"code": "FORKD_E_INVALID_TAG", "message": "bad"}})
        self.assertIsInstance(e, forkd.InvalidArgumentError)
        self.assertEqual(e.status, 500)

    def test_a_newer_code_keeps_its_code_and_is_classed_by_status(self) -> None:
        e = forkd.error_from_response(409, {"error": {"code": "FORKD_E_SOMETHING_NEW", "message": "later"}})
        self.assertIsInstance(e, forkd.ConflictError)
        self.assertEqual((e.code, e.message), ("FORKD_E_SOMETHING_NEW", "later"))

    def test_bodies_without_a_code_fall_back_by_status(self) -> None:
        cases = [(401, "FORKD_E_UNAUTHORIZED", forkd.AuthenticationError), (404, "FORKD_E_NOT_FOUND", forkd.NotFoundError),
                 (429, "FORKD_E_RATE_LIMITED", forkd.RateLimitError), (502, "FORKD_E_INTERNAL", forkd.InternalError),
                 (400, "FORKD_E_INVALID_ARGUMENT", forkd.InvalidArgumentError)]
        for status, code, cls in cases:
            with self.subTest(status=status):
                e = forkd.error_from_response(status, "<html>oops</html>")
                self.assertIs(type(e), cls)
                self.assertEqual((e.code, e.status), (code, status))
                self.assertIn("oops", e.message)
        e = forkd.error_from_response(400, {"error": "old style"})
        self.assertEqual(e.code, "FORKD_E_INVALID_ARGUMENT")
        self.assertIn("old style", e.message)


class ErrorObjectTest(unittest.TestCase):
    def test_builtin_kinds_are_caught_too(self) -> None:
        self.assertIsInstance(forkd.error_for("FORKD_E_TIMEOUT", "t"), builtins.TimeoutError)
        self.assertIsInstance(forkd.error_for("FORKD_E_AGENT_TIMEOUT", "t"), builtins.TimeoutError)
        self.assertIsInstance(forkd.error_for("FORKD_E_NOT_IMPLEMENTED", "n"), builtins.NotImplementedError)
        self.assertNotIsInstance(forkd.error_for("FORKD_E_NOT_FOUND", "n"), OSError)

    def test_pickles_and_serialises(self) -> None:
        e = forkd.error_for("FORKD_E_TIMEOUT", "slow", {"s": 3}, 504)
        e2 = pickle.loads(pickle.dumps(e))
        self.assertIs(type(e2), forkd.TimeoutError)
        self.assertEqual((e2.code, e2.message, e2.details, e2.status), ("FORKD_E_TIMEOUT", "slow", {"s": 3}, 504))
        self.assertEqual(e.to_dict(), {"code": "FORKD_E_TIMEOUT", "message": "slow", "details": {"s": 3}})
        self.assertEqual(forkd.error_for("FORKD_E_INTERNAL", "x").to_dict(), {"code": "FORKD_E_INTERNAL", "message": "x"})

    def test_command_exit_error_carries_the_result(self) -> None:
        e = forkd.CommandExitError("out", "boom\n", 3, None)
        self.assertEqual((e.stdout, e.stderr, e.exit_code, e.error), ("out", "boom\n", 3, None))
        self.assertIsInstance(e, forkd.ForkdError)
        self.assertEqual((e.code, e.status, e.details), ("FORKD_E_COMMAND_FAILED", 400, {"exit_code": 3}))
        self.assertEqual(str(e), "FORKD_E_COMMAND_FAILED: command failed with exit code 3: boom")
        killed = forkd.CommandExitError("", "", None, "killed")
        self.assertIn("no exit code: killed", str(killed))
        self.assertEqual(killed.details, {"exit_code": None, "error": "killed"})
        e2 = pickle.loads(pickle.dumps(e))
        self.assertIs(type(e2), forkd.CommandExitError)
        self.assertEqual((e2.stdout, e2.stderr, e2.exit_code, e2.code), ("out", "boom\n", 3, "FORKD_E_COMMAND_FAILED"))

    def test_command_exit_error_uses_the_protocol_code_the_typescript_sdk_uses(self) -> None:
        src = os.path.join(_support.REPO_DIR, "packages", "sdk", "src", "command-result.ts")
        with open(src, encoding="utf-8") as f:
            text = f.read()
        block = text[text.index("class CommandExitError"):]
        self.assertEqual(re.search(r"super\('(FORKD_E_[A-Z_]+)'", block).group(1), forkd.CommandExitError("", "", 1, None).code)  # type: ignore[union-attr]
        self.assertIn("FORKD_E_COMMAND_FAILED", forkd.ERROR_CODES)



class SandboxGoneTest(unittest.TestCase):
    def test_only_daemon_chosen_codes_mean_not_running(self) -> None:
        from forkd.errors import error_from_response, means_sandbox_gone

        def err(status: int, code: str) -> forkd.ForkdError:
            return error_from_response(status, {"error": {"code": code, "message": "m"}})

        for status, code in [(404, "FORKD_E_SANDBOX_NOT_FOUND"), (409, "FORKD_E_SANDBOX_NOT_RUNNING"), (502, "FORKD_E_AGENT_UNAVAILABLE")]:
            self.assertTrue(means_sandbox_gone(err(status, code)), code)
        # What a guest can make the daemon answer: its failures and the allow-listed file/argument codes.
        for status, code in [(502, "FORKD_E_AGENT_ERROR"), (404, "FORKD_E_FILE_NOT_FOUND"), (404, "FORKD_E_NOT_FOUND"), (400, "FORKD_E_INVALID_ARGUMENT")]:
            self.assertFalse(means_sandbox_gone(err(status, code)), code)
        self.assertFalse(means_sandbox_gone(ValueError("x")))


if __name__ == "__main__":
    unittest.main()
