"""Fixtures for tests against real HashiCorp Serf agents.

Without `serf` on PATH these tests skip, except under CI (env `CI` set), where a missing
serf is a failure: the interop suite must really run there (`make test` installs it).
With `SWIMGUARD_INTEROP_LOGS=<dir>` a failed test's full agent logs and event files are
copied to `<dir>/<test id>/` (the printed tail is often too short to diagnose a flake).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Generator, Iterator
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
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
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
        failed = rep is not None and rep.failed
        if failed:
            sys.stderr.write("\n==== agent logs ====\n" + c.logs(tail=60) + "\n")
        c.close_processes()
        keep = os.environ.get("SWIMGUARD_INTEROP_LOGS")
        if failed and keep:
            dest = Path(keep) / request.node.nodeid.replace("/", "_").replace("::", "__")
            shutil.copytree(c.workdir, dest, dirs_exist_ok=True)
            sys.stderr.write(f"agent logs kept in {dest}\n")
        c.close()
