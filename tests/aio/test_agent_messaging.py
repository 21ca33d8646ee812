"""Messaging through the agent: names or addresses, outcomes, limits (issue 16, point 1).

`send_reliable` returns the outcome of its stream exchange; both sends take a known
member's name; sizes are checked before anything is queued. Real agents on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import os
import socket

import msgpack
import pytest

from swimguard.aio import Agent
from swimguard.aio.agent_messaging import MAX_BEST_EFFORT_BYTES
from swimguard.config import Config
from swimguard.errors import DeliveryError, UnknownMemberError
from swimguard.protocol.events import UserMessage

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


async def first_message(agent: Agent, count: int) -> list[bytes]:
    got: list[bytes] = []
    async for event in agent.events():
        if isinstance(event, UserMessage):
            got.append(event.data)
            if len(got) == count:
                break
    return got


def test_messages_to_a_member_name_arrive_and_send_reliable_reports_success() -> None:
    async def main() -> None:
        config = Config.local()
        async with Agent("a", config=config) as a, Agent("b", config=config) as b:
            await b.join([a.advertise_address])
            received = asyncio.create_task(first_message(b, 2))
            await a.send_reliable("b", b"by name over TCP")  # None: the receiver read it
            a.send_best_effort("b", b"by name over UDP")
            assert sorted(await received) == [b"by name over TCP", b"by name over UDP"]
            assert "reliable_failed" not in a.drops

    asyncio.run(main())


def test_send_reliable_to_nobody_raises_delivery_error_naming_the_address() -> None:
    async def main() -> None:
        with socket.socket() as s:  # a port nobody listens on
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        async with Agent("a", config=Config.local(), serf_compat=False) as a:
            with pytest.raises(DeliveryError, match=f"send_reliable to 127.0.0.1:{port}: "):
                await a.send_reliable(f"127.0.0.1:{port}", b"x")
            assert a.drops["reliable_failed"] == 1
            # Fire and forget: the failure is counted (and the future's exception is not
            # logged as never retrieved).
            forgotten = a.send_reliable(("127.0.0.1", port), b"y")
            await asyncio.wait([forgotten])
            assert a.drops["reliable_failed"] == 2
            await a.send_reliable(a.advertise_address, b"to ourselves")

    asyncio.run(main())


def test_a_reliable_message_still_in_flight_when_the_agent_closes_fails() -> None:
    async def main() -> None:
        with socket.socket() as listener:  # accepts, never reads or closes
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            a = Agent("a", config=Config.local(), serf_compat=False)
            await a.start()
            sent = a.send_reliable(listener.getsockname(), b"x")
            await a.close()
            with pytest.raises(DeliveryError, match="closed before"):
                await sent

    asyncio.run(main())


def test_unknown_names_and_oversized_messages_raise_before_anything_is_sent() -> None:
    async def main() -> None:
        async with Agent("a", config=Config.local(max_stream_bytes=4096)) as a:
            with pytest.raises(UnknownMemberError, match="no member named 'c'"):
                a.send_best_effort("c", b"x")
            with pytest.raises(UnknownMemberError, match="no member named 'c'"):
                a.send_reliable("c", b"x")
            with pytest.raises(UnknownMemberError, match=r"'example\.com' is not an IP"):
                a.send_reliable("example.com:7946", b"x")
            with pytest.raises(ValueError, match="limit is 65000"):
                a.send_best_effort("a", bytes(MAX_BEST_EFFORT_BYTES + 1))
            with pytest.raises(ValueError, match=r"max_stream_bytes\) is 4096"):
                a.send_reliable("a", os.urandom(5000))  # random: compression cannot help
            assert a.open_connections == 0
            assert not a.drops

    asyncio.run(main())


def test_a_payload_starting_with_a_serf_type_byte_reaches_the_user() -> None:
    async def main() -> None:
        config = Config.local()
        async with Agent("a", config=config) as a, Agent("b", config=config) as b:
            await b.join([a.advertise_address])
            received = asyncio.create_task(first_message(b, 2))
            a.send_best_effort("b", msgpack.packb(5))  # b"\x05": Serf's query-response byte
            await a.send_reliable("b", b"\x01not a join intent")
            assert sorted(await received) == [b"\x01not a join intent", b"\x05"]
            assert not any(reason.startswith("serf_") for reason in b.drops)

    asyncio.run(main())
