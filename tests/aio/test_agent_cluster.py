"""Agents with the real core on 127.0.0.1 / ::1: security, refutation, hostile input."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest

from swimguard.aio import Agent
from swimguard.config import Config
from swimguard.errors import JoinError
from swimguard.protocol.events import (
    MemberFailed,
    MemberJoined,
    MemberLeft,
    MemberSuspected,
    MemberUpdated,
)
from swimguard.protocol.members import MemberState
from swimguard.wire.encryption import Keyring
from swimguard.wire.messages import Suspect
from swimguard.wire.packet import encode_message, encode_packet

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


def agent(name: str, host: str = "127.0.0.1", config: Config | None = None, **kwargs: Any) -> Agent:
    kwargs.setdefault("serf_compat", False)
    return Agent(name, bind=(host, 0), config=config or Config.local(), **kwargs)


async def until(predicate: Callable[[], bool], limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def alive_names(a: Agent) -> set[str]:
    return {m.name for m in a.members() if m.state is MemberState.ALIVE}


async def cluster(agents: Sequence[Agent]) -> None:
    for a in agents:
        await a.start()
    for a in agents[1:]:
        await a.join([agents[0].advertise_address])
    names = {a.name for a in agents}
    await until(lambda: all(alive_names(a) == names for a in agents))


def run(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(body())  # type: ignore[arg-type]


async def close_all(agents: Sequence[Agent]) -> None:
    for a in agents:
        await a.close()


def test_encrypted_cluster_works_and_wrong_key_is_rejected_and_counted() -> None:
    async def body() -> None:
        members = [agent(n, keyring=Keyring([KEY])) for n in ("a", "b", "c")]
        intruder = agent("x", keyring=Keyring([OTHER_KEY]))
        plain = agent("p")
        try:
            await cluster(members)
            await intruder.start()
            await plain.start()
            with pytest.raises(JoinError):
                await intruder.join([members[0].advertise_address], timeout=5)
            with pytest.raises(JoinError):
                await plain.join([members[0].advertise_address], timeout=5)
            # UDP with the wrong key (and in plaintext) is dropped and counted too.
            for _ in range(3):
                intruder.send_best_effort(members[1].advertise_address, b"hi")
                plain.send_best_effort(members[1].advertise_address, b"hi")
            await until(lambda: members[1].drops.get("decrypt", 0) >= 3)
            assert sum(members[0].drops.values()) >= 2  # both rejected joins
            assert alive_names(members[0]) == {"a", "b", "c"}
        finally:
            await close_all([*members, intruder, plain])

    run(body)


def test_wrong_label_is_rejected_and_counted() -> None:
    async def body() -> None:
        members = [agent(n, label="blue") for n in ("a", "b")]
        other = agent("x", label="green")
        try:
            await cluster(members)
            await other.start()
            with pytest.raises(JoinError):
                await other.join([members[0].advertise_address], timeout=5)
            other.send_best_effort(members[1].advertise_address, b"hi")
            await until(lambda: members[1].drops.get("label", 0) >= 1)
            assert members[0].drops.get("label", 0) >= 1  # the push/pull stream
            assert alive_names(members[0]) == {"a", "b"}
        finally:
            await close_all([*members, other])

    run(body)


def test_ipv6_loopback_cluster_detects_a_crash() -> None:
    if not socket.has_ipv6:
        pytest.skip("Python built without IPv6")

    async def body() -> None:
        agents = [agent(n, host="::1") for n in ("a", "b", "c")]
        try:
            await cluster(agents)
            assert agents[0].local_member.addr[0] == "::1"
            await agents[2].close()  # a crash: no leave
            await until(
                lambda: all(
                    m.state is MemberState.DEAD for a in agents[:2] for m in a.members()
                    if m.name == "c"
                ),
                limit=20,
            )
        finally:
            await close_all(agents)

    run(body)


@pytest.mark.parametrize("serf", [False, True], ids=["memberlist", "serf"])
def test_falsely_suspected_member_refutes(serf: bool) -> None:
    async def body() -> None:
        agents = [agent(n, serf_compat=serf) for n in ("a", "b", "c")]
        try:
            await cluster(agents)
            a, b = agents[0], agents[1]
            # Each agent's first consumer: every event since it started.
            seen_a: list[object] = []
            seen_b: list[object] = []
            collectors = [asyncio.create_task(collect(x, into))
                          for x, into in ((a, seen_a), (b, seen_b))]
            before = next(m for m in a.members() if m.name == "b").incarnation
            # A forged accusation, as if from a peer whose loop stalled.
            forged = encode_packet(
                encode_message(Suspect(incarnation=before, node="b", from_="c"))
            )
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.sendto(forged, a.advertise_address)
            # b hears of it through a's gossip and refutes with a higher incarnation.
            await until(
                lambda: any(
                    m.name == "b" and m.incarnation > before and m.state is MemberState.ALIVE
                    for m in a.members()
                )
            )
            assert all(m.state is MemberState.ALIVE for m in a.members())
            assert b.local_member.incarnation > before
            assert not any(isinstance(e, MemberFailed) for e in seen_b)

            # a's event stream says b was suspected, then that it is alive again.
            def about_b() -> list[object]:
                return [e for e in seen_a
                        if getattr(getattr(e, "member", None), "name", None) == "b"]

            await until(lambda: bool(about_b()) and isinstance(about_b()[-1], MemberUpdated))
            for task in collectors:
                task.cancel()
            suspected = [e for e in about_b() if isinstance(e, MemberSuspected)]
            assert suspected
            last = about_b()[-1]
            assert isinstance(last, MemberUpdated)
            assert last.member.state is MemberState.ALIVE
            assert last.member.incarnation > before
        finally:
            await close_all(agents)

    run(body)


async def collect(agent: Agent, into: list[object]) -> None:
    async for event in agent.events():
        into.append(event)


def test_garbage_udp_and_tcp_are_dropped_counted_and_cut_off() -> None:
    async def body() -> None:
        agents = [agent(n) for n in ("a", "b")]
        try:
            await cluster(agents)
            a = agents[0]
            host, port = a.advertise_address
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                for i in range(200):
                    s.sendto(os.urandom(1 + i % 300), (host, port))
            await until(lambda: sum(a.drops.values()) >= 150)

            # Garbage on TCP: the connection is closed at once (perhaps after an
            # error reply, as memberlist sends). At b, whose drops no late datagram of the
            # burst above can move (it would show in `grew` below).
            a = agents[1]
            host, port = a.advertise_address
            drops_before = dict(a.drops)
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(b"\xff" * 64)
            await asyncio.wait_for(reader.read(), 5)  # returns at EOF
            # Cut for the garbage, not by the idle deadline that cuts the next connection.
            grew = {k for k, v in a.drops.items() if v > drops_before.get(k, 0)}
            assert grew
            assert "stream_timeout" not in grew
            writer.close()
            await writer.wait_closed()

            # An idle connection is cut by the stream deadline (1 s in the local profile).
            before = dict(a.drops)
            reader, writer = await asyncio.open_connection(host, port)
            started = time.monotonic()
            assert await asyncio.wait_for(reader.read(), 5) == b""
            assert time.monotonic() - started > 0.5  # not at once: it waited for the deadline
            writer.close()
            await writer.wait_closed()
            grew = {k for k, v in a.drops.items() if v > before.get(k, 0)}
            assert grew == {"stream_timeout"}  # the core's stream deadline cut it
            await until(lambda: a.open_connections == 0)
            assert alive_names(a) == {"a", "b"}  # and the node carries on
        finally:
            await close_all(agents)

    run(body)


@pytest.mark.parametrize("serf", [False, True], ids=["memberlist", "serf"])
def test_events_report_joins_suspicion_and_failure(serf: bool) -> None:
    async def body() -> None:
        agents = [agent(n, serf_compat=serf) for n in ("a", "b", "c")]
        try:
            await cluster(agents)
            await agents[2].close()
            seen: list[tuple[str, str]] = []

            async def collect() -> None:
                async for ev in agents[0].events():
                    if isinstance(ev, MemberJoined | MemberSuspected | MemberFailed):
                        seen.append((type(ev).__name__, ev.member.name))
                    if isinstance(ev, MemberFailed):
                        return

            await asyncio.wait_for(collect(), 20)
            assert ("MemberJoined", "a") in seen
            assert ("MemberJoined", "c") in seen
            assert seen[-1] == ("MemberFailed", "c")
            assert ("MemberSuspected", "c") in seen
        finally:
            await close_all(agents)

    run(body)


@pytest.mark.parametrize("serf", [False, True], ids=["memberlist", "serf"])
def test_user_messages_best_effort_reliable_and_broadcast(serf: bool) -> None:
    from swimguard.protocol.events import UserMessage

    async def body() -> None:
        # A user broadcast is sent at most retransmit_mult * ceil(log10(n + 1)) times, to
        # whoever the gossip and piggybacking pick (memberlist's rule): with local's 2 and
        # three members, both copies can go to b (1 run in 40 under load). Allow 6.
        config = Config.local(retransmit_mult=6)
        agents = [agent(n, config=config, serf_compat=serf) for n in ("a", "b", "c")]
        try:
            await cluster(agents)
            a, b, c = agents
            got: dict[str, list[bytes]] = {"b": [], "c": []}

            async def collect(x: Agent) -> None:
                async for ev in x.events():
                    if isinstance(ev, UserMessage):
                        got[x.name].append(ev.data)

            tasks = [asyncio.create_task(collect(x)) for x in (b, c)]
            a.send_best_effort(b.advertise_address, b"udp hello")
            a.send_reliable(b.advertise_address, b"tcp hello" * 1000)
            a.broadcast(b"to everyone")
            await until(
                lambda: {b"udp hello", b"tcp hello" * 1000, b"to everyone"} <= set(got["b"])
                and b"to everyone" in got["c"]
            )
            for t in tasks:
                t.cancel()
            a.update_meta(b"v2")
            await until(
                lambda: all(
                    m.meta == b"v2" for x in (b, c) for m in x.members() if m.name == "a"
                )
            )
        finally:
            await close_all(agents)

    run(body)


def test_advertise_address_is_what_peers_see() -> None:
    async def body() -> None:
        a = agent("a", advertise="127.0.0.1:0")  # port 0: the bound port
        b = agent("b")
        try:
            await a.start()
            assert a.advertise_address == a.bound_address
            await b.start()
            await b.join([a.advertise_address])
            await until(lambda: "b" in alive_names(a))
            assert next(m for m in b.members() if m.name == "a").addr == a.bound_address
        finally:
            await close_all([a, b])

    run(body)


def test_serf_on_user_events_and_a_leave_seen_as_left() -> None:
    from swimguard.serf import LeaveIntentReceived, UserEventReceived

    async def body() -> None:
        agents = [agent(n, serf_compat=True, tags={"role": n}) for n in ("a", "b", "c")]
        try:
            await cluster(agents)
            a, b, c = agents
            seen: list[object] = []

            async def collect() -> None:
                async for ev in b.events():
                    if isinstance(ev, UserEventReceived | LeaveIntentReceived | MemberLeft):
                        seen.append(ev)
                    if isinstance(ev, MemberFailed):
                        seen.append(ev)
                        return
                    kinds = {type(e) for e in seen}
                    if LeaveIntentReceived in kinds and MemberLeft in kinds:
                        return

            task = asyncio.create_task(collect())
            a.user_event("deploy", b"v1")
            await until(lambda: any(isinstance(e, UserEventReceived) for e in seen))
            assert await c.leave(timeout=2.0)
            await asyncio.wait_for(task, 20)
            # The intent usually comes first, but gossip does not promise an order.
            kinds = sorted(type(e).__name__ for e in seen)
            assert kinds == ["LeaveIntentReceived", "MemberLeft", "UserEventReceived"]
            assert isinstance(seen[0], UserEventReceived)
            assert (seen[0].name, seen[0].payload) == ("deploy", b"v1")
            assert not any(k.startswith("serf_") for k in b.drops)
        finally:
            await close_all(agents)

    run(body)
