"""What `SerfLayer` reports and asks its driver to send."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable

from swimguard.errors import UsageError
from swimguard.serf.messages import Query

__all__ = [
    "JoinIntentReceived",
    "KeyringChanged",
    "LeaveIntentReceived",
    "NameConflictResolved",
    "QueryAckReceived",
    "QueryEnd",
    "QueryFinished",
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

    `deadline` is when answers stop being accepted (our clock; None if the layer was given
    no time). From an `Agent`, `respond(payload)` answers it: once, before the deadline,
    at most 1024 bytes encoded, else `QueryRespondError` with Serf's text. Pure code
    answers with `SerfNode.respond(query, payload, now=)` instead.
    """

    query: Query
    deadline: float | None = None
    responder: Callable[[bytes], None] | None = dataclasses.field(
        default=None, compare=False, repr=False
    )

    def respond(self, payload: bytes) -> None:
        """Send our response to the originator (and through relays if it asked for them)."""
        if self.responder is None:
            raise UsageError("this QueryReceived has no responder (answer via SerfNode.respond)")
        self.responder(bytes(payload))


class QueryEnd(enum.Enum):
    """Why a query we originated stopped collecting."""

    DEADLINE = "deadline"
    ALL_ANSWERED = "all_answered"
    CLOSED = "closed"  # the agent closed first


@dataclasses.dataclass(frozen=True, slots=True)
class QueryAckReceived:
    """The first ack from `from_` to our query `ltime` (its Lamport time is its handle)."""

    ltime: int
    from_: str


@dataclasses.dataclass(frozen=True, slots=True)
class QueryResponseReceived:
    """The first response from `from_` to our query `ltime`."""

    ltime: int
    from_: str
    payload: bytes


@dataclasses.dataclass(frozen=True, slots=True)
class QueryFinished:
    """Our query `ltime` stopped collecting; nothing more about it follows."""

    ltime: int
    reason: QueryEnd


@dataclasses.dataclass(frozen=True, slots=True)
class NameConflictResolved:
    """Serf's vote on a name another member also claims ended (`_serf_conflict`).

    `matching` of `responses` members know the name at our address. Lost (`won` False):
    like Serf, this member must stop (names must be unique); the `Agent` closes itself.
    """

    name: str
    matching: int
    responses: int
    won: bool


@dataclasses.dataclass(frozen=True, slots=True)
class KeyringChanged:
    """A key query we answered (`serf keys -install/-use/-remove`) changed our keyring.

    `keys` is the new keyring, primary first: what a keyring file must now hold.
    """

    keys: tuple[bytes, ...]


SerfEvent = (
    JoinIntentReceived
    | LeaveIntentReceived
    | UserEventReceived
    | QueryReceived
    | QueryAckReceived
    | QueryResponseReceived
    | QueryFinished
    | NameConflictResolved
    | KeyringChanged
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
    # Also send `relay` (a Serf relay message wrapping `data`) through this many random
    # live members: the originator asked for relays so that one lost path is not fatal.
    relay_factor: int = 0
    relay: bytes = b""


SerfOutgoing = SerfBroadcast | SerfDirect
