"""The asyncio driver against a fake core: sockets, streams, timer, bounds, counters."""

from __future__ import annotations

import asyncio
import gc
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

import pytest
from aio_fakes import FakeNode, reply_and_close, wait_for

from swimguard.aio import Agent, AgentConfig, EventsLost
from swimguard.config import Config
from swimguard.errors import JoinError, UsageError
from swimguard.protocol.events import MemberJoined
from swimguard.protocol.outgoing import StreamClose, StreamOpen, StreamSend

pytestmark = pytest.mark.timeout(30)


def run(coro: Awaitable[None]) -> None:
    asyncio.run(cast(Any, coro))


def make_agent(name: str, host: str = "127.0.0.1", **kwargs: Any) -> Agent:
    return Agent(
        name,
        bind=(host, 0),
        config=Config.local(),
        node_factory=FakeNode,
        serf_compat=False,
        **kwargs,
    )


def fake(agent: Agent) -> FakeNode:
    """The node `agent` drives (inside its SerfNode with serf_compat), as its factory made it."""
    return FakeNode.built[agent.name]


def with_agents(
    n: int, body: Callable[..., Awaitable[None]], host: str = "127.0.0.1", **kwargs: Any
) -> None:
    async def main() -> None:
        agents = [make_agent(f"n{i}", host, **kwargs) for i in range(n)]
        for a in agents:
            await a.start()
        try:
            await body(*agents)
        finally:
            for a in agents:
                await a.close()

    run(main())


def test_udp_and_tcp_share_the_bound_port_and_udp_leaves_from_it() -> None:
    async def body(a: Agent, b: Agent) -> None:
        host, port = a.bound_address
        assert port != 0
        assert a.advertise_address == (host, port)
        # The TCP listener is on the same port.
        _r, w = await asyncio.open_connection(host, port)
        w.close()
        await w.wait_closed()
        a.send_best_effort(b.advertise_address, b"hello")
        await wait_for(lambda: bool(fake(b).of_kind("datagram")))
        _kind, data, sender, _now = fake(b).of_kind("datagram")[0]
        assert data == b"hello"
        assert sender == a.advertise_address  # source port = bound port

    with_agents(2, body)


def test_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 support in this Python build")

    async def body(a: Agent, b: Agent) -> None:
        assert a.bound_address[0] == "::1"
        a.send_best_effort(b.advertise_address, b"v6")
        await wait_for(lambda: bool(fake(b).of_kind("datagram")))
        assert fake(b).of_kind("datagram")[0][2] == a.advertise_address
        fake(b).on_stream_data = reply_and_close(b"pong")
        a.send_reliable(b.advertise_address, b"ping")
        await wait_for(lambda: bool(fake(a).of_kind("stream_data")))
        assert fake(a).of_kind("stream_data")[0][2] == b"pong"

    with_agents(2, body, host="::1")


def test_reliable_request_reply_and_eof() -> None:
    async def body(a: Agent, b: Agent) -> None:
        fake(b).on_stream_data = reply_and_close(b"pong")
        a.send_reliable(b.advertise_address, b"ping")
        await wait_for(lambda: bool(fake(a).of_kind("stream_closed")))
        accepted = fake(b).of_kind("stream_accepted")
        assert len(accepted) == 1
        assert accepted[0][1][0] == "127.0.0.1"
        assert [d[2] for d in fake(b).of_kind("stream_data")] == [b"ping"]
        assert [d[1:3] for d in fake(a).of_kind("stream_data")] == [(1, b"pong")]
        # The peer closed after replying: EOF, no error.
        assert fake(a).of_kind("stream_closed")[0][1:3] == (1, None)
        # b closed the stream itself, so it is not told about the close. Both connections are
        # gone once the counts reach 0, so any notice would have come by then; a's notice
        # (above) shows the same path does report a close it did not ask for.
        await wait_for(lambda: a.open_connections == 0 and b.open_connections == 0)
        assert fake(b).of_kind("stream_closed") == []

    with_agents(2, body)


def test_connect_failure_is_reported_as_stream_closed_with_error() -> None:
    async def body(a: Agent) -> None:
        with socket.socket() as s:  # a port nobody listens on
            s.bind(("127.0.0.1", 0))
            dead_port = s.getsockname()[1]
        a.send_reliable(("127.0.0.1", dead_port), b"x")
        await wait_for(lambda: bool(fake(a).of_kind("stream_closed")))
        _k, sid, error, _now = fake(a).of_kind("stream_closed")[0]
        assert sid == 1
        assert error is not None
        assert "connect" in error
        assert a.open_connections == 0

    with_agents(1, body)


def test_close_while_connecting_flushes_then_closes() -> None:
    async def body(a: Agent, b: Agent) -> None:
        # Open, send and close in one drain (as the core's send_reliable does):
        # the bytes still go out, and the core, having closed the stream itself,
        # hears nothing more about it.
        fake(a).outgoing += [
            StreamOpen(7, b.advertise_address),
            StreamSend(7, b"data"),
            StreamClose(7),
        ]
        a.broadcast(b"poke")
        await wait_for(lambda: bool(fake(b).of_kind("stream_closed")))
        assert [i[2] for i in fake(b).of_kind("stream_data")] == [b"data"]
        assert fake(b).of_kind("stream_closed")[0][2] is None  # a clean EOF
        await wait_for(lambda: a.open_connections == 0)
        assert fake(a).of_kind("stream_closed") == []

    with_agents(2, body)


def test_timer_fires_at_next_deadline_and_reports_lag() -> None:
    async def body(a: Agent) -> None:
        node = fake(a)
        loop = asyncio.get_running_loop()
        deadline = node.deadline = loop.time() + 0.05
        a.broadcast(b"poke")  # any input re-arms the timer
        await wait_for(lambda: bool(node.of_kind("timeout")))
        # The lag is how late the timer fired against the deadline the node asked for (how
        # late depends on the machine's load, so no upper bound is asserted).
        _kind, lag, fired_at = node.of_kind("lag")[0]
        assert fired_at >= deadline
        assert lag == pytest.approx(fired_at - deadline)
        # The lag report comes right before the timeout, with the same `now`.
        i = node.inputs.index(node.of_kind("lag")[0])
        assert node.inputs[i + 1] == ("timeout", node.of_kind("lag")[0][2])

        # A blocked loop makes the timer late by about the stall.
        node.deadline = loop.time() + 0.02
        a.broadcast(b"poke")
        time.sleep(0.3)  # noqa: ASYNC251 - deliberately block the loop
        await wait_for(lambda: len(node.of_kind("lag")) == 2)
        assert node.of_kind("lag")[1][1] >= 0.25
        assert a.last_loop_lag >= 0.25

    with_agents(1, body)


def test_idle_tcp_connection_is_cut_and_counted() -> None:
    async def body(a: Agent) -> None:
        host, port = a.bound_address
        reader, writer = await asyncio.open_connection(host, port)
        await wait_for(lambda: bool(fake(a).of_kind("stream_accepted")))
        assert await asyncio.wait_for(reader.read(), 3) == b""  # cut by us
        assert a.drops["tcp_lifetime_exceeded"] == 1  # by the lifetime deadline, no other reason
        sid = fake(a).of_kind("stream_accepted")[0][2]
        await wait_for(lambda: bool(fake(a).of_kind("stream_closed")))
        assert fake(a).of_kind("stream_closed")[0][1:3] == (sid, "tcp_lifetime_exceeded")
        writer.close()
        await writer.wait_closed()

    with_agents(1, body, options=AgentConfig(stream_max_lifetime=0.3))


def test_connection_limit() -> None:
    async def body(a: Agent) -> None:
        host, port = a.bound_address
        conns = [await asyncio.open_connection(host, port) for _ in range(3)]
        await wait_for(lambda: a.drops.get("tcp_conn_limit", 0) == 1)
        assert len(fake(a).of_kind("stream_accepted")) == 2
        assert await asyncio.wait_for(conns[2][0].read(), 2) == b""
        for _r, w in conns:
            w.close()
            await w.wait_closed()

    with_agents(1, body, options=AgentConfig(max_streams=2))


def test_stuck_write_after_close_is_aborted() -> None:
    big = b"x" * (24 * 1024 * 1024)  # more than loopback socket buffers can absorb

    def flood_and_close(node: FakeNode, sid: int, data: bytes) -> None:
        node.outgoing += [StreamSend(sid, big), StreamClose(sid)]

    async def body(a: Agent) -> None:
        fake(a).on_stream_data = flood_and_close
        host, port = a.bound_address
        with socket.create_connection((host, port)) as raw:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            raw.sendall(b"req")  # and never read the reply
            await wait_for(lambda: a.drops.get("tcp_close_stuck", 0) == 1, timeout=5)
            await wait_for(lambda: a.open_connections == 0)

    with_agents(
        1,
        body,
        options=AgentConfig(stream_close_grace=0.3, max_stream_buffer_bytes=64 * 1024 * 1024),
    )


def test_write_overflow_aborts_and_reports() -> None:
    def flood(node: FakeNode, sid: int, data: bytes) -> None:
        node.outgoing.append(StreamSend(sid, b"y" * 20_000_000))

    async def body(a: Agent) -> None:
        fake(a).on_stream_data = flood
        host, port = a.bound_address
        with socket.create_connection((host, port)) as raw:
            raw.sendall(b"req")
            await wait_for(lambda: bool(fake(a).of_kind("stream_closed")))
            assert fake(a).of_kind("stream_closed")[0][2] == "tcp_write_overflow"
            assert a.drops["tcp_write_overflow"] == 1

    with_agents(1, body, options=AgentConfig(max_stream_buffer_bytes=1_000_000))


def test_core_exception_is_counted_and_agent_keeps_working() -> None:
    async def body(a: Agent, b: Agent) -> None:
        fake(b).fail_on_datagram = True
        a.send_best_effort(b.advertise_address, b"boom")
        await wait_for(lambda: b.drops.get("internal_error", 0) == 1)
        fake(b).fail_on_datagram = False
        a.send_best_effort(b.advertise_address, b"fine")
        await wait_for(lambda: len(fake(b).of_kind("datagram")) == 2)

    with_agents(2, body)


def test_events_start_with_own_join_and_end_on_close() -> None:
    async def main() -> None:
        agent = make_agent("solo")
        await agent.start()
        events = agent.events()
        first = await asyncio.wait_for(anext(events), 1)
        assert isinstance(first, MemberJoined)
        assert first.member.name == "solo"
        await agent.close()
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(anext(events), 1)

    run(main())


def test_event_overflow_is_reported_as_events_lost() -> None:
    async def main() -> None:
        agent = make_agent("solo", options=AgentConfig(event_buffer=2))
        async with agent:
            node = fake(agent)
            for _ in range(5):
                node.events.append(MemberJoined(node.local_member))
            agent.broadcast(b"poke")
            events = agent.events()
            got = [await anext(events) for _ in range(3)]
            assert isinstance(got[0], MemberJoined)
            assert isinstance(got[1], MemberJoined)
            assert got[2] == EventsLost(4)
            assert agent.drops["events_lost"] == 4

    run(main())


def test_join_success_and_failure() -> None:
    async def main() -> None:
        async with make_agent("j") as agent:
            assert await agent.join(["127.0.0.1:7946", ("127.0.0.2", 1)]) == 2
            assert fake(agent).of_kind("join")[0][1] == (("127.0.0.1", 7946), ("127.0.0.2", 1))
            fake(agent).join_ok = False
            with pytest.raises(JoinError, match="refused"):
                await agent.join(["127.0.0.1:7946"])
            with pytest.raises(ValueError):
                await agent.join([])

    run(main())


def test_leave_meta_and_usage_errors() -> None:
    async def main() -> None:
        agent = make_agent("m", meta=b"hello")
        with pytest.raises(UsageError):
            agent.members()
        async with agent:
            assert fake(agent).meta == b"hello"
            agent.update_meta(b"v2")
            assert agent.local_member.meta == b"v2"
            assert await agent.leave(1.0) is True
            assert fake(agent).of_kind("leave")[0][2] == pytest.approx(1.0, abs=0.05)

    run(main())


def test_serf_compat_sends_intents_and_tags() -> None:
    from swimguard.serf import decode_message, decode_tags

    async def main() -> None:
        agent = Agent(
            "s",
            config=Config.local(),
            node_factory=FakeNode,
            tags={"role": "web"},
        )
        async with agent:
            node = fake(agent)
            assert decode_tags(node.meta) == {"role": "web"}
            await agent.join(["127.0.0.1:1"])
            await agent.leave(1.0)
            kinds = [i[0] for i in node.inputs]
            assert kinds.index("broadcast") < kinds.index("leave")
            intents = [type(decode_message(i[1])).__name__ for i in node.of_kind("broadcast")]
            assert intents == ["Join", "Leave"]

    run(main())


def test_advertise_is_passed_to_the_core_separately_from_the_bind() -> None:
    async def main() -> None:
        async with make_agent("adv", advertise="10.1.2.3:4000") as a:
            assert fake(a).advertise == ("10.1.2.3", 4000)
            assert a.advertise_address == ("10.1.2.3", 4000)
            assert a.bound_address[0] == "127.0.0.1"
        async with make_agent("adv0", advertise=("10.1.2.3", 0)) as a:
            assert a.advertise_address == ("10.1.2.3", a.bound_address[1])

    run(main())


def test_join_timeout_and_a_late_completion_does_not_leak_into_the_next_join() -> None:
    async def main() -> None:
        async with make_agent("j") as agent:
            node = fake(agent)
            node.join_answers = False
            with pytest.raises(JoinError, match="timed out"):
                await agent.join(["127.0.0.1:1"], timeout=0.1)
            node.join_answers = True
            node.finish_join(0)  # the late answer to the first call: a failure
            assert await agent.join(["127.0.0.1:2"]) == 1  # the second call's own answer

    run(main())


def test_a_hanging_connect_closed_by_the_core_is_abandoned_after_the_grace() -> None:
    async def body(a: Agent) -> None:
        loop = asyncio.get_running_loop()

        async def black_hole(*args: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(3600)

        loop.create_connection = black_hole  # type: ignore[method-assign]
        fake(a).outgoing += [
            StreamOpen(9, ("127.0.0.1", 9)),
            StreamSend(9, b"data"),
            StreamClose(9),
        ]
        a.broadcast(b"poke")
        assert a.open_connections == 1
        await wait_for(lambda: a.open_connections == 0, timeout=2)
        assert a.drops["tcp_close_stuck"] == 1
        assert fake(a).of_kind("stream_closed") == []

    with_agents(1, body, options=AgentConfig(stream_close_grace=0.2))




def test_connections_racing_the_close_leave_no_socket_open() -> None:
    # asyncio.Server leaked the socket of a connection accepted in the loop turn before
    # close() (its transport was built after the server closed): a ResourceWarning, made an
    # error by the test settings, at the next garbage collection.
    async def main(turns: int) -> None:
        a = make_agent("n0")
        await a.start()
        clients = []
        for _ in range(8):
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(a.bound_address)
            clients.append(c)
        for _ in range(turns):
            await asyncio.sleep(0)
        await a.close()
        for c in clients:
            c.close()

    for turns in range(6):
        run(main(turns))
        gc.collect()
