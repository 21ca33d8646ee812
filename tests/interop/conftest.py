"""Fixtures for tests against real HashiCorp Serf agents.

Without `serf` on PATH these tests skip, except under CI (env `CI` set), where a missing
serf is a failure: the interop suite must really run there (`make test` installs it).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # bench/ holds the harness shared with the benchmark
    sys.path.insert(0, str(ROOT))

from bench.serf_harness import SERF, Cluster  # noqa: E402


@pytest.fixture
def serf_binary() -> str:
    """Path of the serf binary; fails under CI when it is missing, skips elsewhere."""
    if SERF is None:
        if os.environ.get("CI"):
            pytest.fail("serf is not installed but CI is set: interop tests must run in CI")
        pytest.skip("serf not installed (apt-get install serf)")
    return SERF


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    """Remember each phase's outcome so the cluster fixture can dump logs on failure."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def cluster(serf_binary: str, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """A `Cluster` whose processes are all stopped (by PID) after the test."""
    del serf_binary
    c = Cluster()
    try:
        yield c
    finally:
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            sys.stderr.write("\n==== agent logs ====\n" + c.logs(tail=60) + "\n")
        c.close()
