"""The RPC server on real in-process agents: Serf statuses, member/user records, tags,
monitor and stop, with the same event fan-out as `swimguard agent`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from rpc_support import FakeBackend, RawClient, member, run, serve

from swimguard.aio import Agent
from swimguard.config import Config
from swimguard.protocol.members import MemberState
from swimguard.rpc import AgentBackend, LogRing, RpcServer
from swimguard.rpc.event_filter import EventKind, StreamRecord

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


async def _until(predicate: Callable[[], Any], what: str) -> Any:
    for _ in range(2000):
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


def _agent(name: str, **kwargs: Any) -> Agent:
    # Dead members leave the core's table after 1 s (the RPC must keep listing them), and a
    # lone survivor detects a failure quickly (no Lifeguard slow-down with nobody to ask).
    config = Config.local(
        gossip_to_the_dead_time=1.0, probe_interval=0.2, probe_timeout=0.1,
        awareness_max_multiplier=1, lha_probe=False, lha_suspicion=False,
        suspicion_max_timeout_mult=1,
    )
    return Agent(name, bind=("127.0.0.1", 0), config=config, **kwargs)


@contextlib.asynccontextmanager
async def _served(agent: Agent, log_ring: LogRing | None = None) -> AsyncIterator[RpcServer]:
    backend = AgentBackend(agent, tags={"role": "web"}, leave_timeout=1.0)
    server = RpcServer(backend, log_ring=log_ring)
    await server.start("127.0.0.1", 0)

    async def fan_out() -> None:
        async for event in agent.events():
            record = backend.observe(event)
            if record is not None:
                server.publish(record)

    task = asyncio.create_task(fan_out())
    try:
        yield server
    finally:
        await server.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _statuses(client: RawClient, seq: int) -> dict[str, str]:
    _, body = await client.call("members", seq, replies=2)
    return {m["Name"]: m["Status"] for m in body["Members"]}


def test_statuses_and_member_records_follow_serf() -> None:
    async def body() -> None:
        async with _agent("a", tags={"role": "web"}) as a, _served(a) as server:
            client = await RawClient.connect(server.address)
            try:
                await client.handshake()
                assert await client.call("stream", 1, {"Type": "member-join,member-leave,"
                                                       "member-failed"}) == [
                    {"Error": "", "Seq": 1}
                ]
                b = _agent("b")
                c = _agent("c")
                await b.start()
                await c.start()
                await b.join([a.advertise_address])
                await c.join([a.advertise_address])
                joins: set[str] = set()
                while not {"b", "c"} <= joins:
                    head, record = await client.read(2)
                    assert head == {"Error": "", "Seq": 1}
                    assert record["Event"] == "member-join"
                    joins.update(m["Name"] for m in record["Members"])
                assert await _statuses(client, 2) == {"a": "alive", "b": "alive", "c": "alive"}

                await b.leave(1.0)
                await b.close()
                head, record = await client.read(2)
                assert record["Event"] == "member-leave"
                assert [(m["Name"], m["Status"]) for m in record["Members"]] == [("b", "left")]

                await c.close()  # no leave: failed
                head, record = await client.read(2)
                assert record["Event"] == "member-failed"
                assert [(m["Name"], m["Status"]) for m in record["Members"]] == [
                    ("c", "failed")
                ]
                # The core forgets them soon; Serf keeps listing them (24 h), and so do we.
                await _until(lambda: {m.name for m in a.members()} == {"a"}, "core forgets")
                assert await _statuses(client, 3) == {"a": "alive", "b": "left", "c": "failed"}
                _, stats = await client.call("stats", 4, replies=2)
                assert stats["serf"]["members"] == "1"
            finally:
                await client.aclose()

    run(body)


def test_event_tags_and_stats_through_a_real_agent() -> None:
    async def body() -> None:
        async with _agent("a", tags={"role": "web"}) as a, _served(a) as server, \
                _agent("b") as b:
            await b.join([a.advertise_address])
            client = await RawClient.connect(server.address)
            try:
                await client.handshake()
                await client.call("stream", 1, {"Type": "user"})
                sent = await client.call("event", 2, {"Name": "deploy", "Payload": b"v1",
                                                      "Coalesce": False})
                assert sent == [{"Error": "", "Seq": 2}]
                head, record = await client.read(2)
                assert head == {"Error": "", "Seq": 1}
                assert record == {"Coalesce": False, "Event": "user", "LTime": 1,
                                  "Name": "deploy", "Payload": b"v1"}

                assert await client.call(
                    "tags", 3, {"Tags": {"ver": "2"}, "DeleteTags": ["role"]}
                ) == [{"Error": "", "Seq": 3}]

                def b_sees_tags() -> bool:
                    return any(m.name == "a" and m.state is MemberState.ALIVE
                               and m.meta.endswith(b"ver\xa12") for m in b.members())

                await _until(b_sees_tags, "b sees a's new tags")
                _, stats = await client.call("stats", 4, replies=2)
                assert stats["tags"] == {"ver": "2"}
                assert stats["serf"]["event_time"] == "2"
                (too_big,) = await client.call("tags", 5, {"Tags": {"k": "v" * 600}})
                assert too_big["Error"] == "Encoded length of tags exceeds limit of 512 bytes"
            finally:
                await client.aclose()

    run(body)


def test_monitor_replays_the_ring_filters_levels_and_stops() -> None:
    async def body() -> None:
        ring = LogRing()
        logger = logging.getLogger("swimguard.test_monitor")
        logger.setLevel(logging.DEBUG)
        logger.addHandler(ring)
        try:
            logger.info("before the monitor")
            logger.debug("too quiet")
            async with _agent("a") as a, _served(a, ring) as server:
                client = await RawClient.connect(server.address)
                try:
                    await client.handshake()
                    (bad,) = await client.call("monitor", 1, {"LogLevel": "loud"})
                    assert bad["Error"] == "Unknown log level: LOUD"
                    reply, head, first = await client.call(
                        "monitor", 2, {"LogLevel": "info"}, replies=3
                    )
                    assert reply == head == {"Error": "", "Seq": 2}
                    assert first["Log"].endswith("[INFO] swimguard.test_monitor: before the "
                                                 "monitor")
                    (again,) = await client.call("monitor", 3, {"LogLevel": "debug"})
                    assert again["Error"] == "Monitor already exists"
                    logger.warning("live")
                    _, live = await client.read(2)
                    assert live["Log"].endswith("[WARN] swimguard.test_monitor: live")
                    assert await client.call("stop", 4, {"Stop": 2}) == [{"Error": "", "Seq": 4}]
                    logger.warning("after stop")
                    # The next reply is the stats answer, not a log record.
                    head, stats = await client.call("stats", 5, replies=2)
                    assert head == {"Error": "", "Seq": 5}
                    assert "agent" in stats
                finally:
                    await client.aclose()
        finally:
            logger.removeHandler(ring)

    run(body)


def test_query_records_and_respond() -> None:
    """Each connection numbers the queries its streams got; the first respond wins."""

    async def body() -> None:
        backend = FakeBackend([member("a", 1)])
        server = await serve(backend)
        one = await RawClient.connect(server.address)
        two = await RawClient.connect(server.address)
        try:
            for client in (one, two):
                await client.handshake()
                await client.call("stream", 1, {"Type": "query:ping"})
            await one.call("stream", 2, {"Type": "user"})  # does not match: no second copy
            loop = asyncio.get_running_loop()

            def query(name: str, ttl: float) -> StreamRecord:
                record = {"Event": "query", "LTime": 7, "Name": name, "Payload": b"hi"}
                return StreamRecord(EventKind.QUERY, name, record, object(), loop.time() + ttl)

            server.publish(query("other", 60))  # filtered out everywhere
            server.publish(query("ping", 60))
            for client in (one, two):
                head, record = await client.read(2)
                assert head == {"Error": "", "Seq": 1}
                assert record == {"Event": "query", "ID": 1, "LTime": 7, "Name": "ping",
                                  "Payload": b"hi"}
            (big,) = await one.call("respond", 3, {"ID": 1, "Payload": b"x" * 2000})
            assert big["Error"] == (
                "failed to respond to key query: response exceeds limit of 1024 bytes"
            )
            assert await one.call("respond", 4, {"ID": 1, "Payload": b"answer"}) == [
                {"Error": "", "Seq": 4}
            ]
            (again,) = await two.call("respond", 2, {"ID": 1, "Payload": b"again"})
            assert again["Error"] == "failed to respond to key query: response already sent"
            (unknown,) = await two.call("respond", 3, {"ID": 99, "Payload": b""})
            assert unknown["Error"] == "No pending queries matching ID"
            assert [p for _, p in backend.responses] == [b"answer"]

            server.publish(query("ping", -1))  # already past its deadline when answered
            _, late = await one.read(2)
            assert late["ID"] == 2
            (expired,) = await one.call("respond", 5, {"ID": 2, "Payload": b"late"})
            assert expired["Error"] == "No pending queries matching ID"
        finally:
            await one.aclose()
            await two.aclose()
            await server.close()

    run(body)


def test_monitor_gets_lines_logged_from_other_threads() -> None:
    async def body() -> None:
        ring = LogRing()
        logger = logging.getLogger("swimguard.test_monitor_threads")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        logger.addHandler(ring)
        server = await serve(FakeBackend([member("a", 1)]), log_ring=ring)
        client = await RawClient.connect(server.address)
        try:
            await client.handshake()
            await client.call("monitor", 1, {"LogLevel": "INFO"})
            await asyncio.to_thread(logger.info, "from a thread")
            _, line = await client.read(2)
            assert line["Log"].endswith("swimguard.test_monitor_threads: from a thread")
        finally:
            logger.removeHandler(ring)
            await client.aclose()
            await server.close()

    run(body)


def test_force_leave_refuses_names_no_member_can_have() -> None:
    async def body() -> None:
        async with _agent("a") as a, _served(a) as server:
            client = await RawClient.connect(server.address)
            try:
                await client.handshake()
                (long_name,) = await client.call("force-leave", 1, {"Node": "n" * 5000})
                assert long_name["Error"].startswith("invalid node name")
                (empty,) = await client.call("force-leave", 2, {"Node": ""})
                assert empty["Error"].startswith("invalid node name")
                assert await client.call("force-leave", 3, {"Node": "ghost"}) == [
                    {"Error": "", "Seq": 3}
                ]
            finally:
                await client.aclose()

    run(body)
