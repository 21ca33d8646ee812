"""Small pieces of the driver: addresses, paired bind, event buffer, drop log, options."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from swimguard.aio.agent_config import AgentConfig
from swimguard.aio.drop_log import DropLogger
from swimguard.aio.event_buffer import EventBuffer, EventsLost
from swimguard.aio.sockets import (
    bind_pair,
    destination_for,
    format_address,
    normalize_peer,
    parse_address,
)
from swimguard.aio.udp import MAX_DATAGRAM_BYTES, UdpEndpoint


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:7946", ("127.0.0.1", 7946)),
        ("[::1]:80", ("::1", 80)),
        ("example.org:1", ("example.org", 1)),
        ("10.0.0.1", ("10.0.0.1", 7946)),
        ("::1", ("::1", 7946)),
        ("[::1]", ("::1", 7946)),
    ],
)
def test_parse_address(text: str, expected: tuple[str, int]) -> None:
    assert parse_address(text, default_port=7946) == expected


@pytest.mark.parametrize("bad", ["", "a:b", "1.2.3.4:70000", "[::1", "[::1]x", ":80", "host"])
def test_parse_address_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_address(bad)


def test_format_and_normalize() -> None:
    assert format_address(("::1", 5)) == "[::1]:5"
    assert format_address(("1.2.3.4", 5)) == "1.2.3.4:5"
    assert normalize_peer(("::ffff:1.2.3.4", 9, 0, 0)) == ("1.2.3.4", 9)
    assert normalize_peer(("fe80::1%eth0", 9, 0, 2)) == ("fe80::1", 9)
    assert destination_for(socket.AF_INET6, ("1.2.3.4", 9)) == ("::ffff:1.2.3.4", 9)
    assert destination_for(socket.AF_INET, ("::1", 9)) is None
    assert destination_for(socket.AF_INET, ("1.2.3.4", 9)) == ("1.2.3.4", 9)


def test_bind_pair_uses_one_port_for_udp_and_tcp() -> None:
    udp, tcp = bind_pair("127.0.0.1", 0)
    try:
        port = udp.getsockname()[1]
        assert tcp.getsockname()[1] == port
        # A second pair on the same explicit port fails: the port is taken.
        with pytest.raises(OSError):
            bind_pair("127.0.0.1", port)
    finally:
        udp.close()
        tcp.close()


def test_event_buffer_bounds_and_gap_markers() -> None:
    buf: EventBuffer[str] = EventBuffer(2)
    assert buf.put("a")
    assert buf.put("b")
    assert not buf.put("c")
    assert buf.get_nowait() == "a"
    assert buf.put("d")  # the gap marker goes in before it
    assert [buf.get_nowait() for _ in range(3)] == ["b", EventsLost(1), "d"]
    assert buf.get_nowait() is None
    assert buf.total_lost == 1


def test_event_buffer_async_iteration_ends_on_close() -> None:
    async def main() -> list[object]:
        buf: EventBuffer[int] = EventBuffer(10)
        got: list[object] = []

        async def consume() -> None:
            async for item in buf:
                got.append(item)

        task = asyncio.create_task(consume())
        await asyncio.sleep(0)
        buf.put(1)
        buf.put(2)
        await asyncio.sleep(0)
        buf.close()
        await asyncio.wait_for(task, 1)
        return got

    assert asyncio.run(main()) == [1, 2]


def test_drop_logger_is_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.drops")
    drops = DropLogger(logger, interval=10.0, name="a")
    with caplog.at_level(logging.WARNING, logger="test.drops"):
        assert drops.maybe_log(0.0, {"crc": 1})
        assert not drops.maybe_log(1.0, {"crc": 500})  # within the interval
        assert drops.maybe_log(10.0, {"crc": 500, "label": 2})
        assert not drops.maybe_log(20.0, {"crc": 500, "label": 2})  # nothing new
    assert len(caplog.records) == 2
    assert "crc=499" in caplog.records[1].getMessage()
    assert "label=2" in caplog.records[1].getMessage()


@pytest.mark.parametrize(
    "field", ["max_streams", "event_buffer", "stream_close_grace", "stream_max_lifetime"]
)
def test_agent_config_names_the_bad_field(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        AgentConfig(**{field: 0})


def test_udp_endpoint_reads_the_largest_datagram_into_a_64k_buffer() -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        got: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()
        drops: list[str] = []
        endpoint = UdpEndpoint(lambda data, sender: got.put_nowait((data, sender)), drops.append)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        transport, _ = await loop.create_datagram_endpoint(lambda: endpoint, sock=sock)
        try:
            # The selector transport's default (256 KiB per read) churned the heap.
            assert getattr(transport, "max_size", MAX_DATAGRAM_BYTES) == MAX_DATAGRAM_BYTES
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
                peer.bind(("127.0.0.1", 0))
                peer.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 17)
                largest = bytes(range(256)) * 255 + b"\xff" * 227  # 65,507: IPv4's largest
                peer.sendto(largest, sock.getsockname())
                peer.sendto(b"small", sock.getsockname())
                data, sender = await got.get()
                assert data == largest
                assert sender == peer.getsockname()
                assert (await got.get())[0] == b"small"
            assert drops == []
        finally:
            endpoint.close()

    asyncio.run(body())
