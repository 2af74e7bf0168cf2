"""Two tests that fail on purpose, so the failure path (report, JUnit, exit code) is exercised.
Skipped unless FORKD_DEMO_FAILURES=1 is in the environment when they run."""
import os

import pytest

from stats_kit import moving_average, slugify


def _demo_only():
    if os.environ.get("FORKD_DEMO_FAILURES") != "1":
        pytest.skip("intentional failure: set FORKD_DEMO_FAILURES=1 to run")


def test_intentional_assertion_failure():
    _demo_only()
    assert slugify("Fork Daemon") == "fork_daemon"


def test_intentional_error():
    _demo_only()
    moving_average([1, 2, 3], -1)
