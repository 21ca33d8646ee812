"""What `SerfLayer` reports and asks its driver to send."""

from __future__ import annotations

import dataclasses

from swimguard.serf.messages import Query, QueryResponse

__all__ = [
    "JoinIntentReceived",
    "LeaveIntentReceived",
    "QueryReceived",
    "QueryResponseReceived",
    "SerfBroadcast",
    "SerfDirect",
    "SerfEvent",
    "SerfOutgoing",
    "UserEventReceived",
]


@dataclasses.dataclass(frozen=True, slots=True)
class JoinIntentReceived:
    """A newer join intent for `node` was accepted (it is, or stays, alive at `ltime`)."""

    node: str
    ltime: int


@dataclasses.dataclass(frozen=True, slots=True)
class LeaveIntentReceived:
    """A newer leave intent for `node` was accepted: its coming memberlist exit is a leave."""

    node: str
    ltime: int
    prune: bool


@dataclasses.dataclass(frozen=True, slots=True)
class UserEventReceived:
    """A Serf user event seen for the first time (also replayed from push/pull state)."""

    name: str
    payload: bytes
    ltime: int
    coalesce: bool


@dataclasses.dataclass(frozen=True, slots=True)
class QueryReceived:
    """A Serf query addressed to us (filters matched), seen for the first time.

    Answer with `SerfLayer.respond(query, payload)` before `query.timeout_ns` runs out.
    """

    query: Query


@dataclasses.dataclass(frozen=True, slots=True)
class QueryResponseReceived:
    """An ack or response to a query (we never originate queries, so usually stray)."""

    response: QueryResponse


SerfEvent = (
    JoinIntentReceived
    | LeaveIntentReceived
    | UserEventReceived
    | QueryReceived
    | QueryResponseReceived
)


@dataclasses.dataclass(frozen=True, slots=True)
class SerfBroadcast:
    """Gossip `data` (Serf type byte + body) via `node.broadcast`, which adds memberlist's 0x08."""

    data: bytes


@dataclasses.dataclass(frozen=True, slots=True)
class SerfDirect:
    """Send `data` (Serf type byte + body) to `to` as one memberlist user message by UDP.

    On the wire that is `0x08 + data`, not CRC'd (Go sends these without CRC), possibly
    encrypted. Used for query acks/responses and for relaying responses.
    """

    to: tuple[str, int]
    data: bytes


SerfOutgoing = SerfBroadcast | SerfDirect
