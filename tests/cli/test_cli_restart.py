"""`swimguard agent` restarted at a new address under the same name (issue 12 point 6)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest
from test_cli_agents import AgentProcess, spawn, wait_until

__all__ = ["spawn"]  # the fixture, shared with test_cli_agents


def test_a_restart_at_a_new_address_exits_1_saying_it_was_refused(
    spawn: Callable[..., AgentProcess],
) -> None:
    a = spawn("r1")
    wait_until(lambda: bool(a.addr), 15, "r1 up")
    b = spawn("r2", "--join", a.addr)
    wait_until(lambda: a.saw("member-join", "r2"), 15, "r2 joined")
    b.proc.kill()
    wait_until(lambda: a.saw("member-failed", "r2"), 30, "r2 failed")
    again = spawn("r2", "--join", a.addr)
    assert again.proc.wait(30) == 1
    assert again.proc.stderr is not None
    err = again.proc.stderr.read()
    assert "refused: the cluster still holds this name at" in err, err
    assert "joined" not in err
    assert a.proc.poll() is None


@pytest.mark.parametrize("flag", ["--dead-node-reclaim-time", "--reconnect-timeout"])
def test_negative_seconds_exit_2(flag: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "swimguard",
            "agent",
            "--name",
            "x",
            "--bind",
            "127.0.0.1:0",
            flag,
            "-1",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert flag in result.stderr


def test_coalesce_flag_still_prints_json_lines(spawn: Callable[..., AgentProcess]) -> None:
    a = spawn("c1", "--coalesce")
    wait_until(lambda: bool(a.addr), 15, "c1 up")
    b = spawn("c2", "--join", a.addr, "--coalesce")
    wait_until(lambda: a.saw("member-join", "c2") and b.saw("member-join", "c1"), 15, "joined")


def test_a_failed_member_is_reaped_after_the_reconnect_timeout(
    spawn: Callable[..., AgentProcess],
) -> None:
    a = spawn("p1", "--reconnect-timeout", "1")
    wait_until(lambda: bool(a.addr), 15, "p1 up")
    b = spawn("p2", "--join", a.addr)
    wait_until(lambda: a.saw("member-join", "p2"), 15, "p2 joined")
    b.proc.kill()
    wait_until(lambda: a.saw("member-reap", "p2"), 30, "p2 reaped")
    reap = next(e for e in a.events() if e["event"] == "member-reap")
    assert reap["incarnation"] is None
    failed_at, reaped_at = a.when("member-failed", "p2"), a.when("member-reap", "p2")
    assert failed_at is not None
    assert reaped_at is not None
    assert reaped_at >= failed_at + 0.5  # the 1 s timeout counts from the failure
