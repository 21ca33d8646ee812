"""asyncserf 0.21.1 from PyPI (an async Serf client we did not write, spec serf-rpc.md §5.2)
against a swimguard agent, side by side with the same session against a serf agent.

asyncserf only runs with anyio 3 and msgpack < 1.0, so it gets a throwaway venv of its own.
Its `tags` call is broken against serf too (it waits for a body serf never sends): there we
check that our agent does what serf does, not that asyncserf succeeds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from bench.serf_harness import Cluster, free_port, wait_for

pytestmark = [pytest.mark.interop, pytest.mark.timeout(600)]

PINS = ("asyncserf==0.21.1", "anyio==3.7.1", "msgpack==0.6.2", "async_generator==1.10")
SESSION = Path(__file__).with_name("asyncserf_session.py")


@pytest.fixture(scope="module")
def asyncserf_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with asyncserf and its pins. An install failure fails the test: CI must not
    pass without having run a client we did not write."""
    venv = tmp_path_factory.mktemp("asyncserf") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *PINS],
        capture_output=True, text=True, timeout=600,
    )
    if install.returncode != 0:
        pytest.fail(f"cannot install {' '.join(PINS)} from PyPI (needed for the asyncserf "
                    f"acceptance test):\n{install.stderr[-2000:]}")
    return python


def _session(python: Path, rpc_port: int) -> dict[str, Any]:
    done = subprocess.run([str(python), str(SESSION), "127.0.0.1", str(rpc_port)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return report


def test_asyncserf_session_reads_our_agent_as_a_serf_agent(
    cluster: Cluster, asyncserf_python: Path
) -> None:
    s = cluster.start_serf("s", tags={"role": "db"})
    rpc = free_port()
    cluster.start_swim("py", [s.addr], tags={"role": "web"},
                       extra=["--rpc-addr", f"127.0.0.1:{rpc}"])

    def both_alive() -> bool:
        out = subprocess.run(
            [sys.executable, "-m", "swimguard", "members", f"-rpc-addr=127.0.0.1:{rpc}",
             "-status=alive"], capture_output=True, text=True, timeout=30, check=False,
        ).stdout
        return len(out.splitlines()) == 2

    wait_for(both_alive, 30, 0.2, "py sees s and itself alive")
    reports = {name: _session(asyncserf_python, port)
               for name, port in (("py", rpc), ("s", s.rpc_port))}
    for me, report in reports.items():
        assert report["members"] == [["py", "alive"], ["s", "alive"]], me
        assert report["members_web"] == ["py"], me
        assert report["event"] == {"name": "deploy", "payload": "v1"}, me
        # Every member acks (self included); the stream on the queried agent responds.
        assert report["query"] == {"acks": ["py", "s"], "responses": {me: "pong"}}, me
        assert report["monitor_line"] is True, me
        # The error is raised with the body; the text inside the multierror wrapper is
        # Go's dial error on serf and ours here.
        assert "1 error occurred:\\n\\t* " in report["join_error"], me
        assert "'Num': 0" in report["join_error"], me
        # As against serf: asyncserf times out waiting, yet the agent applied the tag.
        assert report["tags"] == "timeout", me
        assert report["agent_tags"]["ver"] == "2", me
    # Serf's sections exactly (our health is in `explain`, docs/reference/rpc.md).
    assert reports["py"]["stats_sections"] == reports["s"]["stats_sections"]
