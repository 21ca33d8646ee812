"""UDP side of the driver: one datagram socket, used for receiving and sending.

Every packet leaves from the bound socket so its source port is our port
(Go peers ack to the packet source when a ping carries no source address).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import cast

from swimguard.aio.sockets import destination_for, normalize_peer
from swimguard.protocol.outgoing import Address

DatagramHandler = Callable[[bytes, Address], None]
CountDrop = Callable[[str], None]

log = logging.getLogger("swimguard.agent")

MAX_SEND_BUFFER_BYTES = 1024 * 1024
"""asyncio queues datagrams the kernel refused, without a bound; past this we drop."""

MAX_DATAGRAM_BYTES = 65536
"""What one receive may read: more than any UDP payload (65,507 bytes over IPv4, 65,527
over IPv6), as memberlist's own 64 KiB receive buffer."""


class UdpEndpoint(asyncio.DatagramProtocol):
    """Feeds received datagrams to `on_datagram` and sends from the same socket."""

    def __init__(self, on_datagram: DatagramHandler, count_drop: CountDrop) -> None:
        self._on_datagram = on_datagram
        self._count_drop = count_drop
        self._transport: asyncio.DatagramTransport | None = None
        self._family = socket.AF_INET

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # CPython's selector datagram transport does not subclass DatagramTransport.
        self._transport = cast(asyncio.DatagramTransport, transport)
        # CPython's selector transport reads each datagram into a fresh 256 KiB buffer
        # (`max_size`, not a public knob). That size is above glibc's trim threshold, so
        # every datagram grew and shrank the heap with brk and faulted a fresh page in:
        # about 40 us per datagram, a tenth of an idle agent's CPU. 64 KiB loses nothing.
        if getattr(transport, "max_size", 0) > MAX_DATAGRAM_BYTES:
            transport.max_size = MAX_DATAGRAM_BYTES  # type: ignore[attr-defined]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            self._family = sock.family

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        if not data:
            self._count_drop("udp_empty")
            return
        self._on_datagram(data, normalize_peer(addr))

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and friends, reported on a later socket call. Not
        # dropped input: the failure detector notices unreachable peers by itself.
        log.debug("UDP socket error: %s", exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def send(self, to: Address, data: bytes) -> None:
        """Send one datagram; failures are counted, never raised."""
        transport = self._transport
        if transport is None or transport.is_closing():
            self._count_drop("udp_send_closed")
            return
        dest = destination_for(self._family, to)
        if dest is None:
            self._count_drop("udp_family_mismatch")
            return
        # DatagramTransport has get_write_buffer_size at runtime (selector and proactor
        # loops), typeshed does not declare it.
        if transport.get_write_buffer_size() > MAX_SEND_BUFFER_BYTES:  # type: ignore[attr-defined]
            self._count_drop("udp_send_buffer_full")
            return
        try:
            transport.sendto(data, dest)
        except (OSError, ValueError, TypeError):
            self._count_drop("udp_send_error")

    def close(self) -> None:
        """Close the socket."""
        if self._transport is not None:
            self._transport.close()
