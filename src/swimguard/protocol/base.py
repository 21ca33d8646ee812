"""State shared by the layers of `Node`: attributes, constants, small helpers.

`Node` is assembled from layers, each in its own module, each building on the
previous one: `NodeBase` (this module: the state) <- `Transmitter` (encoding,
piggybacking, gossip rounds) <- `Membership` (memberlist's state rules) <-
`Prober` (failure detection) <- `Streams` (push/pull, TCP ping, reliable
messages) <- `Node` (public API, timers and datagram dispatch).
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import random
from collections import Counter
from typing import Final

from swimguard.config import Config
from swimguard.protocol.awareness import Awareness
from swimguard.protocol.deadlines import Deadlines
from swimguard.protocol.events import Event, UserMessage
from swimguard.protocol.hooks import (
    AliveHook,
    ConflictHook,
    MergeHook,
    MessageHook,
    MetaHook,
    PingHook,
    StateHook,
)
from swimguard.protocol.members import MemberState
from swimguard.protocol.outgoing import Address
from swimguard.protocol.suspicion import Suspicion
from swimguard.protocol.table import MemberRecord, MemberTable
from swimguard.protocol.timers import Timer
from swimguard.protocol.transmit import Transmitter
from swimguard.wire.stream import StreamDecoder

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

U32: Final = 0xFFFF_FFFF

ALIVE, SUSPECT, DEAD, LEFT = (
    MemberState.ALIVE,
    MemberState.SUSPECT,
    MemberState.DEAD,
    MemberState.LEFT,
)


@dataclasses.dataclass(slots=True)
class ProbeState:
    """One probe cycle (memberlist `probeNode`)."""

    seq: int
    target: str
    incarnation: int
    start: float
    direct_deadline: float
    deadline: float
    indirect: bool = False
    expected_nacks: int = 0
    nacks: int = 0
    tcp_stream: int | None = None
    tcp_ok: bool = False


@dataclasses.dataclass(slots=True)
class Relay:
    """An indirect ping we run for `origin` (memberlist `handleIndirectPing`)."""

    origin: Address
    origin_seq: int
    nack: bool


@dataclasses.dataclass(slots=True)
class JoinBatch:
    """The seeds of one `join()` call still being contacted."""

    pending: int
    joined: int = 0
    errors: list[str] = dataclasses.field(default_factory=list)


class StreamKind(enum.Enum):
    """Why a stream is open."""

    INBOUND = "in"  # a peer's stream we answer (push/pull, TCP ping, user message)
    PUSH_PULL = "push_pull"  # our push/pull (join or anti-entropy)
    TCP_PING = "tcp_ping"  # our TCP fallback ping of the probe target
    USER_OUT = "user_out"  # our reliable user message (`send_reliable`)


@dataclasses.dataclass(slots=True)
class StreamState:
    """An open stream the core is waiting on."""

    kind: StreamKind
    peer: Address
    decoder: StreamDecoder
    join: bool = False
    batch: int | None = None
    probe_seq: int = 0


class NodeBase:
    """Every attribute of a node, declared once for all layers (set in `Node.__init__`)."""

    config: Config
    name: str
    stalls: int
    _rng: random.Random
    _addr_bytes: bytes
    _advertise: Address
    _meta_hook: MetaHook | None
    _message_hook: MessageHook | None
    _state_hook: StateHook | None
    _conflict_hook: ConflictHook | None
    _merge_hook: MergeHook | None
    _alive_hook: AliveHook | None
    _ping_hook: PingHook | None
    _events: list[Event]
    _drops: Counter[str]
    _table: MemberTable
    _deadlines: Deadlines[Timer]
    _awareness: Awareness
    _suspicions: dict[str, Suspicion]
    _seq: int
    _incarnation: int
    _probe: ProbeState | None
    _relays: dict[int, Relay]
    _streams: dict[int, StreamState]
    _inbound: int
    _next_stream: int
    _joins: dict[int, JoinBatch]
    _next_join: int
    _left: bool
    _leave_waiting: bool
    _next_refresh: float
    refreshes: int
    incarnation_restarts: int
    _allowed_nets: tuple[IPNetwork, ...]

    @property
    def _self(self) -> MemberRecord:
        rec = self._table.get(self.name)
        assert rec is not None
        return rec

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & U32
        return self._seq

    def _new_stream_id(self) -> int:
        sid = self._next_stream
        self._next_stream += 1
        return sid

    def _deliver_user(self, data: bytes) -> None:
        self._events.append(UserMessage(data))
        if self._message_hook is not None:
            self._message_hook.notify_message(data)

    def _ip_allowed(self, host: str) -> bool:
        """memberlist `IPAllowed`: True unless `cidrs_allowed` is set and excludes `host`."""
        if not self._allowed_nets:
            return True
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(ip in net for net in self._allowed_nets)

    _tx: Transmitter

    def _close_stream(self, stream_id: int, *, reply_first: bool = False) -> None:
        raise NotImplementedError  # provided by the Streams layer
