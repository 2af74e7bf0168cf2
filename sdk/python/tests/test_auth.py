"""Integration: a daemon that requires a bearer token."""
import os
import unittest

import _support
import forkd


class AuthTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.tag = _support.fixture_tag()
        _support.require_env("FORKD_TOKEN")

    def test_the_right_token_works(self) -> None:
        self.assertEqual(forkd.Controller().version()["api"], "v1")
        self.assertEqual(forkd.Controller(token=os.environ["FORKD_TOKEN"]).version()["api"], "v1")

    def test_missing_token(self) -> None:
        ctl = forkd.Controller(token="")
        self.assertIsNone(ctl.endpoint.token)
        with self.assertRaises(forkd.AuthenticationError) as cm:
            ctl.list_sandboxes()
        e = cm.exception
        self.assertEqual((e.code, e.status), ("FORKD_E_UNAUTHORIZED", 401))
        self.assertIn("missing", e.message)
        self.assertEqual(ctl.health(), {"ok": True}, "/healthz needs no token")

    def test_wrong_token(self) -> None:
        with self.assertRaises(forkd.AuthenticationError) as cm:
            forkd.Sandbox.create(self.tag, token="wrong-token-0123456789abcdef")
        self.assertEqual(cm.exception.code, "FORKD_E_UNAUTHORIZED")
        self.assertIn("invalid", cm.exception.message)
        with self.assertRaises(forkd.AuthenticationError):
            forkd.Sandbox.list(token="wrong-token-0123456789abcdef")
        with self.assertRaises(forkd.AuthenticationError):
            forkd.Controller(token="wrong-token-0123456789abcdef").write_file("sb-0123456789abcdef", "/tmp/x", b"x" * 100_000)


if __name__ == "__main__":
    unittest.main()
