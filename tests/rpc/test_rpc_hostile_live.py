"""Hostile clients against a live `swimguard agent` process's RPC port, all at once.

The in-process tests (test_rpc_hostile.py) pin each rule; this one checks what the issue
asks of a real agent: while garbage, pre-handshake commands, a wrong token, an unknown
command, a 100 MB body, 1,000 idle connections and a client that never reads its stream
hit agent A, A's memory stays bounded, a legitimate client is still served, and A still
notices (on its JSON event lines) that a member was killed. The server's own counters,
printed when A exits, account for what it dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import re
import resource
import signal
import socket
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import msgpack
import pytest
from rpc_support import AgentProcess, RawClient

from swimguard.rpc.client import Client

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]

TOKEN = "s3cret"
IDLE = 1000
BIG = 100 * 1024 * 1024
RSS_BUDGET = 64 * 1024 * 1024
MAX_CONNECTIONS = 64  # RpcLimits' default, which the agent uses
EVENTS = 2000  # user events sent while the lazy client reads nothing
LAZY_STREAMS = 16  # streams it holds: 16 records per event, ~15 MB in all
BOMBS = [
    # Just under 1 MiB each; unpacked, some 70 MB of dicts / 60 MB of strings.
    msgpack.packb({"Command": "members", "Seq": 2, "x": [[{}] * 8000] * 125}),
    msgpack.packb({"Command": "members", "Seq": 2, "x": [["ab"] * 8000] * 40}),
]


def _rss(pid: int) -> int:
    """Resident set size of `pid` in bytes (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


class _EventLines:
    """A's JSON event lines, read by a thread as they come (the pipe never fills)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[bytes]) -> None:
        for raw in stream:
            self._lines.put(json.loads(raw))
        self._lines.put(None)

    def wait_for(self, matches: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        """Blocks until a line matches: event-driven, bounded only by the test's timeout."""
        while True:
            line = self._lines.get()
            if line is None:
                raise AssertionError(f"A's stdout ended before: {what}")
            if matches(line):
                return line


def _member_event(kind: str, name: str) -> Callable[[dict[str, Any]], bool]:
    return lambda line: line.get("event") == kind and line.get("name") == name


def _raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        top = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (top, hard))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert soft == resource.RLIM_INFINITY or soft >= needed, f"fd limit {soft} < {needed}"


async def _admitted(address: tuple[str, int], *, rcvbuf: int | None = None) -> RawClient:
    """A raw connection that shook hands and authenticated."""
    if rcvbuf is None:
        client = await RawClient.connect(address)
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, address)
        client = RawClient(*await asyncio.open_connection(sock=sock))
    await client.handshake()
    assert await client.call("auth", 1, {"AuthKey": TOKEN}) == [{"Error": "", "Seq": 1}]
    return client


async def _send_big_body(address: tuple[str, int]) -> int:
    """An `event` whose body announces and streams 100 MB; returns the bytes A took."""
    client = await _admitted(address)
    head = msgpack.packb({"Command": "event", "Seq": 2})
    body_head = b"\x83\xa4Name\xa1x\xa8Coalesce\xc2\xa7Payload\xc6" + BIG.to_bytes(4, "big")
    chunk = b"\0" * (1024 * 1024)
    sent = 0
    try:
        await client.send_raw(head + body_head)
        while sent < BIG:
            await client.send_raw(chunk)
            sent += len(chunk)
        assert await client.closed()  # all of it fit in buffers: A still hangs up
    except (ConnectionError, OSError):
        pass  # A hung up mid-body: what we want
    finally:
        await client.aclose()
    return sent


async def _attack(a: AgentProcess, c: AgentProcess, lines: _EventLines) -> dict[str, int]:
    address = ("127.0.0.1", a.rpc_port)
    pid = a.proc.pid
    figures = {"rss_start": _rss(pid)}
    peak = figures["rss_start"]

    def sample() -> None:
        nonlocal peak
        peak = max(peak, _rss(pid))

    # Garbage bytes: closed without a reply.
    garbage = await RawClient.connect(address)
    await garbage.send_raw(b"\xc1\xc1garbage" * 100)
    assert await garbage.closed()
    await garbage.aclose()

    # A command before the handshake: Serf's error, then closed.
    early = await RawClient.connect(address)
    assert await early.call("members", 1) == [{"Error": "Handshake required", "Seq": 1}]
    assert await early.closed()
    await early.aclose()

    # A wrong token: Serf's error; the connection stays but is refused every command.
    wrong = await RawClient.connect(address)
    await wrong.handshake()
    bad = await wrong.call("auth", 1, {"AuthKey": "guess"})
    assert bad == [{"Error": "Invalid authentication token", "Seq": 1}]
    assert await wrong.call("members", 2) == [{"Error": "Authentication required", "Seq": 2}]

    # An unknown command: Serf's error, then closed.
    unknown = await _admitted(address)
    assert await unknown.call("launch", 2) == [{"Error": "Unsupported command", "Seq": 2}]
    assert await unknown.closed()
    await unknown.aclose()

    # A client that subscribes to everything and never reads again (a tiny receive window).
    # Several streams, so each event is queued several times: more than the kernel's
    # socket buffers (megabytes on loopback) take, without flooding the cluster for long.
    # It sends its requests and reads nothing more, not even their replies (records may
    # come between them); its dropped records below show the streams were open.
    lazy = await _admitted(address, rcvbuf=4096)
    for seq in range(2, 2 + LAZY_STREAMS):
        await lazy.send({"Command": "stream", "Seq": seq}, {"Type": "*"})
    await lazy.send({"Command": "monitor", "Seq": 2 + LAZY_STREAMS}, {"LogLevel": "debug"})

    # 1,000 idle connections, held open: no handshake, not a byte.
    idle = [await asyncio.open_connection(*address) for _ in range(IDLE)]
    sample()

    # A 100 MB body while all of that is held.
    figures["big_body_bytes_sent"] = await _send_big_body(address)
    sample()

    # Requests under the size limit that would unpack into millions of Python objects.
    for bomb in BOMBS:
        client = await _admitted(address)
        with contextlib.suppress(ConnectionError):  # hung up on mid-request
            await client.send_raw(bomb)
            assert await client.closed()
        await client.aclose()
        sample()

    async with Client(*address, auth=TOKEN) as legit:
        # Meanwhile a legitimate client is served, even with the idle sockets held.
        names = {m.name: m.status for m in await legit.members()}
        assert names == {"ha": "alive", "hb": "alive", "hc": "alive"}
        # Records for the lazy client pile up: its queue must drop them, not grow.
        payload = b"p" * 400
        for i in range(EVENTS):
            await legit.event(f"flood{i % 7}", payload, coalesce=False)
            if i % 500 == 0:
                sample()
        sample()

        # A still detects failures: C dies, A's event lines report it.
        c.proc.send_signal(signal.SIGKILL)
        c.proc.wait()
        await asyncio.to_thread(
            lines.wait_for, _member_event("member-failed", "hc"), "A reports hc failed"
        )
        sample()
        names = {m.name: m.status for m in await legit.members()}
        assert names == {"ha": "alive", "hb": "alive", "hc": "failed"}

    # The attack ends; A answers a normal request on a fresh connection.
    for _, writer in idle:
        writer.close()
    for client in (wrong, lazy):
        await client.aclose()
    async with Client(*address, auth=TOKEN) as after:
        assert {m.name for m in await after.members()} == {"ha", "hb", "hc"}
    sample()
    figures["rss_peak"] = peak
    return figures


def _dropped(stderr: str) -> dict[str, int]:
    """The counters A prints on exit ("dropped input by reason: {...}")."""
    found = re.findall(r"dropped input by reason: (\{.*\})", stderr)
    assert found, stderr[-2000:]
    counters: dict[str, int] = json.loads(found[-1])
    return counters


def test_a_live_agent_survives_every_hostile_rpc_client_at_once(tmp_path: Path) -> None:
    _raise_fd_limit(IDLE + 512)
    err_path = tmp_path / "a.stderr"
    with err_path.open("wb") as err:
        a = AgentProcess("ha", "--rpc-auth", TOKEN, stdout=subprocess.PIPE, stderr=err)
    agents = [a]
    try:
        assert a.proc.stdout is not None
        lines = _EventLines(a.proc.stdout)
        agents.append(AgentProcess("hb", "--join", a.addr, rpc=False))
        c = AgentProcess("hc", "--join", a.addr, rpc=False)
        agents.append(c)
        joined: set[str] = set()

        def both_joined(line: dict[str, Any]) -> bool:
            if line.get("event") == "member-join":
                joined.add(line["name"])
            return joined >= {"hb", "hc"}

        lines.wait_for(both_joined, "hb and hc join")

        figures = asyncio.run(_attack(a, c, lines))

        a.proc.send_signal(signal.SIGTERM)
        assert a.proc.wait(60) == 0
        dropped = _dropped(err_path.read_text())
        growth = figures["rss_peak"] - figures["rss_start"]
        print(f"RSS start {figures['rss_start'] >> 20} MiB, peak {figures['rss_peak'] >> 20} "
              f"MiB (+{growth >> 20} MiB); 100 MB body: A took "
              f"{figures['big_body_bytes_sent'] >> 20} MiB before hanging up; dropped {dropped}")
        assert growth < RSS_BUDGET
        assert figures["big_body_bytes_sent"] < BIG or dropped["rpc_protocol_violations"] >= 2
        # Garbage, the 100 MB body and the bombs broke the protocol: all counted.
        assert dropped.get("rpc_protocol_violations", 0) >= 2 + len(BOMBS)
        # Every idle socket beyond the limit was refused or evicted, never all held.
        closed = dropped.get("rpc_connections_refused", 0) + dropped.get(
            "rpc_connections_evicted", 0
        )
        assert closed >= IDLE - MAX_CONNECTIONS
        assert dropped.get("rpc_records_dropped", 0) > 0
    finally:
        for agent in agents:
            agent.stop()
        if a.proc.stdout is not None:
            a.proc.stdout.close()
