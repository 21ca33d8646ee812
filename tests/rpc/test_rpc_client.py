"""`swimguard.rpc.Client` and the `swimguard members|join|...` commands against our server."""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys

import pytest
from rpc_support import AgentProcess, FakeBackend, eventually, member, run, serve

from swimguard.rpc import Client, LogRing, RpcClientError, SerfStatus
from swimguard.rpc.backend import QueryItemKind

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _backend() -> FakeBackend:
    return FakeBackend([
        member("a", 7946, tags={"role": "web"}),
        member("b", 7947, SerfStatus.FAILED, {"role": "db"}),
    ])


def test_client_commands() -> None:
    async def body() -> None:
        backend = _backend()
        backend.join_result = "1 error occurred:\n\t* refused\n\n"
        server = await serve(backend)
        try:
            async with Client(*server.address) as client:
                members = await client.members()
                assert [(m.name, m.status, m.tags) for m in members] == [
                    ("a", "alive", {"role": "web"}), ("b", "failed", {"role": "db"}),
                ]
                assert members[0].addr == "127.0.0.1"
                assert members[0].port == 7946
                assert members[0].delegate == (2, 5, 5)
                assert [m.name for m in await client.members(status="fail.*")] == ["b"]
                assert [m.name for m in await client.members(tags={"role": "w.b"})] == ["a"]
                with pytest.raises(RpcClientError, match="refused"):
                    await client.join(["127.0.0.1:1"])
                backend.join_result = 2
                assert await client.join(["x", "y"]) == 2
                await client.event("deploy", b"v1", coalesce=False)
                assert backend.events == [("deploy", b"v1", False)]
                await client.tags(set={"ver": "2"}, delete=["role"])
                assert backend.tags == {"ver": "2"}
                assert (await client.stats())["agent"] == {"name": "a"}
                # Several requests in flight on one connection, answered by Seq.
                results = await asyncio.gather(*(client.stats() for _ in range(20)))
                assert all(r["agent"] == {"name": "a"} for r in results)
                await client.force_leave("ghost", prune=True)
                assert backend.forced == [("ghost", True)]
        finally:
            await server.close()

    run(body)


def test_client_stream_and_monitor() -> None:
    async def body() -> None:
        ring = LogRing()
        logger = logging.getLogger("swimguard.test_client")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        logger.addHandler(ring)
        server = await serve(_backend(), log_ring=ring)
        try:
            logger.info("earlier")
            async with Client(*server.address) as client:
                async with client.stream("user:deploy") as events:
                    await client.event("other", b"")
                    await client.event("deploy", b"v2")
                    event = await anext(aiter(events))
                    assert (event.event, event.name, event.payload) == ("user", "deploy", b"v2")
                async with client.monitor("info") as lines:
                    line = await anext(aiter(lines))
                    assert line.endswith("[INFO] swimguard.test_client: earlier")
                # After both stopped, the connection still answers.
                assert (await client.stats())["agent"] == {"name": "a"}
        finally:
            logger.removeHandler(ring)
            await server.close()

    run(body)


def test_client_errors() -> None:
    async def body() -> None:
        server = await serve(_backend(), auth_key="s3cret")
        try:
            with pytest.raises(RpcClientError, match="Invalid authentication token"):
                async with Client(*server.address, auth="nope"):
                    pass
            async with Client(*server.address) as client:
                with pytest.raises(RpcClientError, match="Authentication required"):
                    await client.stats()
            async with Client(*server.address, auth="s3cret") as client:
                assert len(await client.members()) == 2
        finally:
            await server.close()
        with pytest.raises(RpcClientError, match="cannot connect"):
            async with Client(*server.address):
                pass

    run(body)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "swimguard", *args], capture_output=True,
                          text=True, timeout=60)


def test_swimguard_rpc_subcommands_against_swimguard_agents() -> None:
    a = AgentProcess("a", "--tag", "role=web")
    b = AgentProcess("b", "--tag", "role=db", "--join", a.addr, rpc=False)
    rpc = f"-rpc-addr=127.0.0.1:{a.rpc_port}"
    try:
        eventually(lambda: "b " in _cli("members", rpc).stdout, "a lists b")
        lines = sorted(_cli("members", rpc).stdout.splitlines())
        assert lines == [
            f"a  127.0.0.1:{a.port}  alive  role=web",
            f"b  127.0.0.1:{b.port}  alive  role=db",
        ]
        detailed = _cli("members", rpc, "-detailed", "-name", "a").stdout
        assert detailed.strip().endswith("Protocol Version: 5  Available Protocol Range: [2, 5]")
        assert _cli("members", "--rpc-addr", f"127.0.0.1:{a.rpc_port}", "-format=json",
                    "-tag", "role=db").stdout.count('"name"') == 1
        assert _cli("event", rpc, "deploy", "v1").stdout == (
            "Event 'deploy' dispatched! Coalescing enabled: true\n"
        )
        assert _cli("event", rpc, "-coalesce=false", "x").stdout.endswith("enabled: false\n")
        assert _cli("tags", rpc, "-set", "ver=2").stdout == "Successfully updated agent tags\n"
        info = _cli("info", rpc).stdout
        assert "\tver = 2" in info
        assert "\tname = a" in info
        failed = _cli("join", rpc, "127.0.0.1:1")
        assert failed.returncode == 1
        # serf's agent's text, as captured (tests/rpc/data/cap1.json).
        assert failed.stdout == (
            "Error joining the cluster: 1 error occurred:\n\t* Failed to join 127.0.0.1: "
            "dial tcp 127.0.0.1:1: connect: connection refused\n\n\n"
        )
        refused = _cli("members", "-rpc-addr=127.0.0.1:1")
        assert refused.returncode == 1
        assert refused.stdout.startswith("Error connecting to Serf agent: ")
        assert _cli("leave", rpc).stdout == "Graceful leave complete\n"
        assert a.proc.wait(30) == 0
    finally:
        a.stop()
        b.stop()


def test_client_survives_serfs_double_auth_error() -> None:
    async def body() -> None:
        server = await serve(_backend(), auth_key="s3cret")
        try:
            async with Client(*server.address) as client:
                with pytest.raises(RpcClientError, match="Authentication required"):
                    await client.event("x", b"")  # its body comes back as a second error
                with pytest.raises(RpcClientError, match="Authentication required"):
                    await client.members()
        finally:
            await server.close()

    run(body)


def test_client_query() -> None:
    async def body() -> None:
        backend = _backend()
        backend.query_items = [
            (QueryItemKind.ACK, "a", None), (QueryItemKind.RESPONSE, "b", b"pong"),
        ]
        server = await serve(backend)
        try:
            async with Client(*server.address) as client:
                answers = [a async for a in client.query("ping", b"hi", request_ack=True,
                                                         timeout=2.0)]
                assert [(a.type, a.from_, a.payload) for a in answers] == [
                    ("ack", "a", None), ("response", "b", b"pong"),
                ]
                name, payload, params = backend.queries[0]
                assert (name, payload, params["timeout"]) == ("ping", b"hi", 2.0)
                with pytest.raises(RpcClientError, match="_serf_"):
                    async for _ in client.query("_serf_x"):
                        pass
                assert (await client.stats())["agent"] == {"name": "a"}
        finally:
            await server.close()

    run(body)


def test_swimguard_monitor_prints_log_lines_and_events_until_interrupted() -> None:
    a = AgentProcess("a")
    monitor = subprocess.Popen(
        [sys.executable, "-m", "swimguard", "monitor", f"-rpc-addr=127.0.0.1:{a.rpc_port}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert monitor.stdout is not None
        first = monitor.stdout.readline()
        assert "[INFO] swimguard.cli: " in first, first
        assert _cli("event", f"-rpc-addr=127.0.0.1:{a.rpc_port}", "deploy", "v1").returncode == 0
        seen = []
        for line in monitor.stdout:
            seen.append(line)
            if line.startswith("\tPayload:"):
                break
        assert "Event Info:\n" in seen
        assert '\tName: "deploy"\n' in seen
        assert seen[-1] == "\tPayload: []byte{0x76, 0x31}\n"
        monitor.send_signal(signal.SIGINT)
        assert monitor.wait(30) == 0
        assert monitor.stderr is not None
        assert monitor.stderr.read() == ""  # Ctrl-C is the normal way out: no traceback
    finally:
        if monitor.poll() is None:
            monitor.kill()
            monitor.wait(5)
        for stream in (monitor.stdout, monitor.stderr):
            if stream is not None:
                stream.close()
        a.stop()
