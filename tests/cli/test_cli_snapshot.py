"""`swimguard agent --snapshot/--rejoin/--retry-join/--keyring-file` as real processes."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from test_cli_agents import AgentProcess, spawn, wait_until

from swimguard.cli import ExitCode

__all__ = ["spawn"]  # the fixture, imported for the tests below

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

AGENT = [
    sys.executable,
    "-m",
    "swimguard",
    "agent",
    "--name",
    "x",
    "--bind",
    "127.0.0.1:0",
    "--log-level",
    "WARNING",
    "--rpc-addr",
    "",  # several agents run at once: none takes serf's default RPC port
]


def run_agent(*extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*AGENT, *extra], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["--rejoin"], ["--rejoin", "--snapshot"]),
        (["--snapshot", "x.snap", "--no-serf"], ["--snapshot", "--no-serf"]),
        (["--retry-max", "-1"], ["--retry-max", "-1"]),
        (["--retry-interval", "soon"], ["--retry-interval", "soon"]),
        (["--retry-join", "127.0.0.1:"], ["--retry-join", "127.0.0.1:"]),
    ],
)
def test_persist_flag_errors_exit_2_naming_the_flag(extra: list[str], named: list[str]) -> None:
    result = run_agent(*extra)
    assert result.returncode == ExitCode.USAGE
    assert "Traceback" not in result.stderr
    for text in named:
        assert text in result.stderr


def test_a_bad_keyring_file_exits_2_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "none.json"
    result = run_agent("--keyring-file", str(missing))
    assert result.returncode == ExitCode.USAGE
    assert f"keyring file {missing} does not exist" in result.stderr
    bad = tmp_path / "bad.json"
    bad.write_text('["AAAA"]')
    result = run_agent("--keyring-file", str(bad))
    assert result.returncode == ExitCode.USAGE
    assert "entry 0 is 3 bytes" in result.stderr
    assert "Traceback" not in result.stderr


def test_keyring_file_is_created_from_encrypt(tmp_path: Path) -> None:
    key = base64.b64encode(bytes(range(32))).decode()
    path = tmp_path / "k.json"
    result = run_agent("--encrypt", key, "--keyring-file", str(path), "--join", "127.0.0.1:1")
    assert result.returncode == ExitCode.JOIN_FAILED
    assert json.loads(path.read_text()) == [key]


def test_retry_join_gives_up_after_retry_max_with_status_1() -> None:
    result = run_agent(
        "--retry-join",
        "127.0.0.1:1",
        "--retry-max",
        "1",
        "--retry-interval",
        "0.05",
        "--log-level",
        "INFO",
    )
    assert result.returncode == ExitCode.JOIN_FAILED
    assert result.stderr.count("join failed") >= 1
    assert "maximum retry join attempts made" in result.stderr


def test_retry_join_joins_a_live_seed(spawn: Callable[..., AgentProcess]) -> None:
    a = spawn("r1")
    wait_until(lambda: bool(a.addr), 15, "r1 up")
    spawn("r2", "--retry-join", a.addr, "--retry-interval", "0.1")
    wait_until(lambda: a.saw("member-join", "r2"), 15, "r2 joined by retry-join")


def test_killed_agent_restarted_with_its_snapshot_rejoins(
    spawn: Callable[..., AgentProcess], tmp_path: Path
) -> None:
    snap = tmp_path / "s2.snap"
    a = spawn("s1")
    wait_until(lambda: bool(a.addr), 15, "s1 up")
    b = spawn("s2", "--snapshot", str(snap), "--join", a.addr)
    wait_until(lambda: a.saw("member-join", "s2"), 15, "s2 joined")
    wait_until(
        lambda: snap.exists() and f"alive: s1 {a.addr}" in snap.read_text(), 15, "s1 recorded"
    )
    bind = b.addr
    b.stop()  # SIGKILL: no leave, the snapshot still remembers s1
    wait_until(lambda: a.state_of("s2") == "member-failed", 30, "s2 failed")
    # no --join: the snapshot's members are the seeds
    spawn("s2", "--snapshot", str(snap), "--bind", bind)
    wait_until(lambda: a.state_of("s2") == "member-join", 30, "s2 rejoined")
