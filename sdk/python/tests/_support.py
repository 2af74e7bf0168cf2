"""Shared test set-up: the SDK on sys.path, and the daemon the integration tests run against."""
import os
import sys
import unittest
from typing import List, Optional

SDK_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO_DIR = os.path.dirname(os.path.dirname(SDK_DIR))
if SDK_DIR not in sys.path:
    sys.path.insert(0, SDK_DIR)

import forkd  # noqa: E402

HOW = (
    "the integration tests run against a real forkd daemon: run them through `npm test` "
    "(tests/python-sdk.integration.test.ts starts one), or set FORKD_URL (and FORKD_TOKEN) to a "
    "running daemon and FORKD_TEST_TAG to its python fixture snapshot"
)


def require_env(*names: str) -> None:
    """Fails (never skips) when the daemon's address or the fixture tag is not given."""
    missing = [n for n in names if not os.environ.get(n)]
    if missing:
        raise RuntimeError(f"{', '.join(missing)} not set: {HOW}")


def fixture_tag() -> str:
    require_env("FORKD_URL", "FORKD_TEST_TAG")
    return os.environ["FORKD_TEST_TAG"]


class SandboxTestCase(unittest.TestCase):
    """Tests sharing one sandbox of the fixture snapshot (killed at the end)."""

    sb: "forkd.Sandbox"
    tag: str
    _extra: List["forkd.Sandbox"]

    @classmethod
    def setUpClass(cls) -> None:
        cls.tag = fixture_tag()
        cls._extra = []
        cls.sb = forkd.Sandbox.create(cls.tag)

    @classmethod
    def tearDownClass(cls) -> None:
        for s in [cls.sb, *cls._extra]:
            s.kill()

    @classmethod
    def spawn(cls, **kw: object) -> "forkd.Sandbox":
        """Another sandbox for this class (killed at the end)."""
        s = forkd.Sandbox.create(cls.tag, **kw)  # type: ignore[arg-type]
        cls._extra.append(s)
        return s


def unix_url() -> Optional[str]:
    """The daemon's Unix socket URL: FORKD_TEST_UNIX_URL, or FORKD_URL when it is one."""
    u = os.environ.get("FORKD_TEST_UNIX_URL") or ""
    if not u and os.environ.get("FORKD_URL", "").startswith("unix:"):
        u = os.environ["FORKD_URL"]
    return u or None
