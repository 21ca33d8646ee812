"""swimguard's own RPC CLI additions (`members -watch`, `explain`) against a real serf agent."""

from __future__ import annotations

import subprocess
import sys

import pytest
from bench.serf_harness import Cluster
from test_serf_cli_rpc import _mixed

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]


def test_swimguard_watch_and_explain_against_a_serf_agent(cluster: Cluster) -> None:
    """Our extensions meet a serf agent: the live table has no health column to fill (serf
    has no `explain`, and it is not sent), and `swimguard explain` fails cleanly."""
    s, _, _ = _mixed(cluster)
    base = [sys.executable, "-m", "swimguard"]
    watch = subprocess.run(
        [*base, "members", "-watch", "-count", "2", "-interval", "0.1",
         "-rpc-addr", f"127.0.0.1:{s.rpc_port}"],
        capture_output=True, text=True, timeout=60,
    )
    assert watch.returncode == 0, watch.stderr
    tables = watch.stdout.split("members seen by s")
    assert len(tables) == 3
    for table in tables[1:]:
        rows = {cells[0]: cells for cells in (
            [c.strip() for c in line.strip("│ ").split("│")] for line in table.splitlines()
        )}
        assert rows["s (us)"][1:3] == ["alive", "-"]
        assert rows["py"][1:3] == ["alive", "-"]
        assert rows["py"][4] == "role=web"
    explain = subprocess.run(
        [*base, "explain", "-rpc-addr", f"127.0.0.1:{s.rpc_port}", "py"],
        capture_output=True, text=True, timeout=60,
    )
    assert explain.returncode == 1
    assert explain.stdout.startswith("Error explaining py:")
    assert "Traceback" not in explain.stderr
