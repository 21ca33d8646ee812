"""`swimguard` CLI errors: one line naming the flag and value, and a documented status.

Usage mistakes exit 2 before anything starts; runtime failures exit with their own
`ExitCode`. Real processes on 127.0.0.1; waits are on process exit or output lines.
"""

from __future__ import annotations

import importlib.metadata
import signal
import socket
import subprocess
import sys

import pytest

from swimguard import cli
from swimguard.aio import Agent
from swimguard.cli import ExitCode, agent_options

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

AGENT = [sys.executable, "-m", "swimguard", "agent", "--name", "x", "--bind", "127.0.0.1:0",
         "--log-level", "WARNING", "--rpc-addr", ""]


def run_agent(*extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*AGENT, *extra], capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL)


def one_line(stderr: str) -> str:
    """The whole of stderr, which must be exactly one line and no traceback."""
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["--meta", "m" * 600], ["--meta", "600", "512"]),
        (["--bind", "::1:0"], ["--bind", "::1:0", "brackets"]),
        (["--bind", "127.0.0.1:99999"], ["--bind", "127.0.0.1:99999"]),
        (["--bind", "[::1"], ["--bind", "[::1"]),
        (["--advertise", "1.2.3.4:x"], ["--advertise", "1.2.3.4:x"]),
        (["--leave-timeout", "-1"], ["--leave-timeout", "-1"]),
        (["--leave-timeout", "inf"], ["--leave-timeout", "inf"]),
        (["--no-serf", "--tag", "a=b"], ["--tag", "a=b", "--no-serf"]),
        (["--tag", "novalue"], ["--tag", "novalue"]),
        (["--tag", "k=" + "v" * 600], ["--tag", "512"]),
        (["--join", "[::1]:7946"], ["--join", "[::1]:7946", "IPv6", "IPv4"]),
        (["--join", "127.0.0.1:"], ["--join", "127.0.0.1:"]),
        (["--name", ""], ["--name"]),
        (["--label", "l" * 300], ["--label", "300", "255"]),
        (["--encrypt", "not base64!"], ["--encrypt", "base64"]),
        (["--profile", "moon"], ["--profile", "moon"]),
        (["--log-level", "loud"], ["--log-level", "LOUD"]),
        (["--metrics-addr", "127.0.0.1"], ["--metrics-addr", "127.0.0.1", "no port"]),
        (["--rpc-addr", "", "--rpc-auth", "s3cret"], ["--rpc-auth", "--rpc-addr is empty"]),
        (["--rpc-addr", "::1:0"], ["--rpc-addr", "::1:0", "brackets"]),
        (["--metrics-addr", "::1:0"], ["--metrics-addr", "::1:0", "[::1:0]:PORT", "[::1]:0"]),
    ],
)
def test_usage_errors_are_one_line_naming_flag_and_value(
    extra: list[str], named: list[str]
) -> None:
    result = run_agent(*extra)
    assert result.returncode == ExitCode.USAGE == 2
    assert result.stdout == ""
    line = one_line(result.stderr)
    assert line.startswith("swimguard agent: error: ")
    for text in named:
        assert text in line
    assert "s3cret" not in line  # a token is named by its flag, never shown


def test_missing_flags_and_commands_are_usage_errors() -> None:
    for argv in (["agent", "--name", "x"], [], ["frobnicate"]):
        result = subprocess.run([sys.executable, "-m", "swimguard", *argv],
                                capture_output=True, text=True, timeout=30)
        assert result.returncode == 2
        assert "error:" in one_line(result.stderr)


def test_version_comes_from_the_package_metadata() -> None:
    result = subprocess.run([sys.executable, "-m", "swimguard", "--version"],
                            capture_output=True, text=True, timeout=30, check=True)
    assert result.stdout.strip() == f"swimguard {importlib.metadata.version('swimguard')}"


def test_a_port_in_use_exits_3_naming_the_address() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        result = run_agent("--bind", f"127.0.0.1:{port}")
    assert result.returncode == ExitCode.CANNOT_START == 3
    assert result.stdout == ""
    line = one_line(result.stderr)
    assert f"--bind 127.0.0.1:{port}" in line
    assert "in use" in line


def test_an_unresolvable_bind_host_exits_3_naming_it() -> None:
    result = run_agent("--bind", "foo.invalid:1")
    assert result.returncode == ExitCode.CANNOT_START
    line = one_line(result.stderr)
    assert "--bind foo.invalid:1" in line
    assert "cannot resolve 'foo.invalid'" in line


def test_a_bind_without_port_uses_7946_and_says_so() -> None:
    # Like Serf's -bind: the port defaults to 7946 and the bound address is logged at
    # start. Whether 127.0.0.2:7946 is free or not, the address named is the same.
    proc = subprocess.Popen(
        [sys.executable, "-m", "swimguard", "agent", "--name", "x", "--bind", "127.0.0.2",
         "--rpc-addr", ""],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stderr is not None
    first = proc.stderr.readline()  # "bound to ..." or "cannot start: ..."
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    proc.stderr.close()
    assert "127.0.0.2:7946" in first
    assert proc.returncode in (ExitCode.OK, ExitCode.CANNOT_START)


def test_a_value_refused_by_the_agent_becomes_one_usage_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Whatever the agent or the core refuse when built (an invalid own name, ...) is
    # a usage error too, also when it only shows up at start.
    async def refuse_at_start(self: Agent) -> None:
        raise ValueError("member name is 70000 bytes; the limit is 512")

    monkeypatch.setattr(Agent, "start", refuse_at_start)
    status = cli.main(["agent", "--name", "n" * 70, "--bind", "127.0.0.1:0", "--rpc-addr", ""])
    assert status == ExitCode.USAGE
    err = capsys.readouterr().err
    assert one_line(err) == (
        "swimguard agent: error: member name is 70000 bytes; the limit is 512 (see --help)"
    )

    def refuse(*args: object, **kwargs: object) -> None:
        raise ValueError("Agent name must not be empty")

    monkeypatch.setattr(agent_options, "Agent", refuse)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["agent", "--name", "x", "--bind", "127.0.0.1:0", "--rpc-addr", ""])
    assert exit_info.value.code == ExitCode.USAGE
    assert "Agent name must not be empty" in one_line(capsys.readouterr().err)


def test_an_unresolvable_metrics_host_exits_3_before_the_agent_starts() -> None:
    result = run_agent("--metrics-addr", "foo.invalid:1")
    assert result.returncode == ExitCode.CANNOT_START
    assert result.stdout == ""  # not even our own member-join: nothing was started
    line = one_line(result.stderr)
    assert "--metrics-addr foo.invalid:1" in line
    assert "cannot resolve 'foo.invalid'" in line
