"""Ctrl-C (SIGINT) during a CLI command: the exit status and last line are serf's.

Each command runs as a real process against an in-process server whose query never ends
(one ack, then nothing), and is interrupted once it has printed that it is waiting. The
same cases run with Debian's `serf` against the same server, so the expectations are
checked against serf itself, not only written down.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
from bench.serf_harness import SERF
from rpc_support import FakeBackend, member, run, serve

from swimguard.rpc import RpcServer
from swimguard.rpc.backend import QueryItemKind

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


class _EndlessQuery(FakeBackend):
    """Every query is acked by `a`, then waits forever (as one whose timeout is far)."""

    def query(self, name: str, payload: bytes, **params: Any) -> AsyncIterator[Any]:
        async def items() -> AsyncIterator[Any]:
            yield (QueryItemKind.ACK, "a", None)
            await asyncio.Event().wait()

        return items()


async def _interrupted(argv: list[str], waiting_line: str) -> tuple[int, str]:
    """Run `argv`, SIGINT it once it printed `waiting_line`; (exit status, all stdout)."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    seen: list[str] = []
    while waiting_line not in seen:
        raw = await proc.stdout.readline()
        assert raw, f"{argv[0]} ended before {waiting_line!r}: {seen}"
        seen.append(raw.decode().rstrip("\n"))
    proc.send_signal(signal.SIGINT)
    rest = (await proc.stdout.read()).decode()
    return await proc.wait(), "\n".join(seen) + "\n" + rest


def _cli(tool: str, command: str, server: RpcServer, *args: str) -> list[str]:
    address = f"-rpc-addr=127.0.0.1:{server.address[1]}"
    if tool == "serf":
        assert SERF is not None
        return [SERF, command, address, *args]
    return [sys.executable, "-m", "swimguard", command, address, *args]


CASES = [
    # (command, its flags, the line after which it waits, status, last line)
    ("query", ["-timeout=1h", "ping"], "Ack from 'a'", 1, "Ack from 'a'"),
    ("reachability", [], "Starting reachability test...", 1, "Test interrupted"),
]


def _tools() -> list[Any]:
    serf_case = pytest.param("serf", marks=pytest.mark.interop)
    return ["swimguard", serf_case]


@pytest.mark.parametrize("tool", _tools())
@pytest.mark.parametrize(("command", "flags", "waiting", "status", "last"), CASES)
def test_ctrl_c_exits_as_serf_does(
    tool: str, command: str, flags: list[str], waiting: str, status: int, last: str
) -> None:
    if tool == "serf" and SERF is None:
        if os.environ.get("CI"):
            pytest.fail("serf is not installed but CI is set: interop tests must run in CI")
        pytest.skip("serf not installed (apt-get install serf)")

    async def body() -> None:
        server = await serve(_EndlessQuery([member("a", 1)]))
        try:
            code, out = await _interrupted(_cli(tool, command, server, *flags), waiting)
        finally:
            await server.close()
        assert code == status, out
        assert out.splitlines()[-1] == last, out
        assert "Traceback" not in out

    run(body)
