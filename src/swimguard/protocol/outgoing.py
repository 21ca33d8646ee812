"""What the protocol core asks its driver to do (the "effects").

The core never touches a socket: after every input the driver drains
`Node.take_outgoing()` and performs these, in order. Addresses are
`(host, port)` tuples with the host as a text IP ("127.0.0.1", "::1").

Streams (TCP in the asyncio driver, a modelled reliable pipe in the simulator)
are identified by ids the core allocates: for outbound streams in `StreamOpen`,
for inbound ones as the return value of `Node.stream_accepted()`. The core owns
every stream deadline and emits `StreamClose` itself when one passes, so the
driver needs no timers of its own.
"""

from __future__ import annotations

import dataclasses

Address = tuple[str, int]


@dataclasses.dataclass(frozen=True, slots=True)
class Datagram:
    """Send `data` (fully encoded: compressed, CRC'd, encrypted, labelled) by UDP to `to`."""

    to: Address
    data: bytes


@dataclasses.dataclass(frozen=True, slots=True)
class StreamOpen:
    """Open a stream to `to`; later `StreamSend`s for this id are queued until connected.

    On connect failure the driver calls `Node.stream_closed(stream_id, now, error=...)`.
    """

    stream_id: int
    to: Address


@dataclasses.dataclass(frozen=True, slots=True)
class StreamSend:
    """Write `data` on stream `stream_id`."""

    stream_id: int
    data: bytes


@dataclasses.dataclass(frozen=True, slots=True)
class StreamClose:
    """Close stream `stream_id` (after flushing what was sent). No `stream_closed` call follows."""

    stream_id: int


Outgoing = Datagram | StreamOpen | StreamSend | StreamClose
