"""`swimguard agent --rpc-addr/--rpc-auth`: flag errors and bind failures name the address."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
from rpc_support import AgentProcess, RawClient, run

from swimguard.cli import ExitCode
from swimguard.cli.agent_flags import build_parser

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

AGENT = [sys.executable, "-m", "swimguard", "agent", "--name", "x", "--bind", "127.0.0.1:0",
         "--log-level", "WARNING"]


def test_an_rpc_port_in_use_exits_3_naming_the_address() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([*AGENT, "--rpc-addr", f"127.0.0.1:{port}"],
                                capture_output=True, text=True, timeout=30)
    assert result.returncode == ExitCode.CANNOT_START
    assert result.stdout == ""
    assert f"--rpc-addr 127.0.0.1:{port}" in result.stderr
    assert "in use" in result.stderr


@pytest.mark.parametrize("value", ["127.0.0.1:99999", "::1:7373", "[::1"])
def test_a_bad_rpc_addr_is_a_usage_error(value: str) -> None:
    result = subprocess.run([*AGENT, "--rpc-addr", value], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == ExitCode.USAGE
    assert "--rpc-addr" in result.stderr


def test_rpc_auth_and_leave_through_the_port_stop_the_agent() -> None:
    agent = AgentProcess("x", "--rpc-auth", "s3cret")

    async def body() -> None:
        client = await RawClient.connect(("127.0.0.1", agent.rpc_port))
        try:
            await client.handshake()
            # Before auth a request body is read as the next header, as serf does.
            await client.send({"Command": "event", "Seq": 1}, {"Name": "x"})
            assert await client.read(2) == [{"Error": "Authentication required", "Seq": 1}] * 2
            (wrong,) = await client.call("auth", 2, {"AuthKey": "nope"})
            assert wrong["Error"] == "Invalid authentication token"
            assert await client.call("auth", 3, {"AuthKey": "s3cret"}) == [
                {"Error": "", "Seq": 3}
            ]
            assert await client.call("leave", 4) == [{"Error": "", "Seq": 4}]
            assert await client.closed()  # the agent shuts down after a leave
        finally:
            await client.aclose()

    try:
        run(body)
        assert agent.proc.wait(30) == ExitCode.OK
    finally:
        agent.stop()


def test_rpc_defaults_are_serfs() -> None:
    parser, _ = build_parser()
    args = parser.parse_args(["agent", "--name", "x", "--bind", "127.0.0.1:0"])
    assert args.rpc_addr == "127.0.0.1:7373"
    assert args.rpc_auth == ""
