"""Serf queries from both ends, as pure bookkeeping (no IO, time passed in as `now=`).

`QueryBook` is the originator's side: the queries we sent that are still open, their
deadlines, the acks and responses collected (each `From` counted once per kind, as Serf
does) and, beyond Serf, early completion once every expected responder has answered.
`AnswerBook` is the responder's side: the queries we received that may still be
answered, each at most once and only before its deadline, with Serf's error texts.
"""

from __future__ import annotations

import collections
import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Final

import msgpack

from swimguard.serf.events import (
    QueryAckReceived,
    QueryEnd,
    QueryFinished,
    QueryResponseReceived,
    SerfEvent,
)
from swimguard.serf.messages import Query, QueryFlag, QueryResponse

__all__ = [
    "QUERY_TIMEOUT_MULT",
    "AnswerBook",
    "QueryBook",
    "QueryEnd",
    "QueryParams",
    "QueryRespondError",
    "default_query_timeout",
    "encode_filters",
]

# Serf's QueryTimeoutMult: the default timeout is this many gossip intervals per decade of N.
QUERY_TIMEOUT_MULT: Final = 16
FILTER_NODE: Final = 0
FILTER_TAG: Final = 1
# Open queries we originated: each is a handle someone waits on; a runaway caller gets an
# error instead of unbounded state.
MAX_OPEN_QUERIES: Final = 1024
# Distinct responders kept per open query (per kind), as Serf's channels of capacity N: N
# live members when the query was sent, plus slack for members joining meanwhile. Forged
# `From` names beyond it are dropped, so they cannot grow memory without bound.
RESPONDER_SLACK: Final = 16
# Received queries still answerable. Serf keeps every one until its deadline; a flood of
# queries with long timeouts must not grow memory, so the oldest are forgotten first.
MAX_ANSWERABLE: Final = 4096
_RESPOND_PREFIX: Final = "failed to respond to key query: "


class QueryRespondError(ValueError):
    """`respond` refused, with Serf's message text (`serf` RPC clients show it verbatim)."""


@dataclasses.dataclass(frozen=True, slots=True)
class QueryParams:
    """What a query is sent with, as Serf's `QueryParam` plus our early completion.

    `filter_nodes`: only these members answer; `filter_tags`: tag name -> Go regexp
    (unanchored) the member's tag must match; `timeout`: seconds, None = Serf's default
    (`default_query_timeout`); `expected`: stop once this many members have responded.
    With `filter_nodes` and no `expected`, the query stops once each of them responded.
    """

    filter_nodes: tuple[str, ...] = ()
    filter_tags: Mapping[str, str] = dataclasses.field(default_factory=dict)
    request_ack: bool = False
    relay_factor: int = 0
    timeout: float | None = None
    expected: int | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.relay_factor <= 255:
            raise ValueError("relay_factor must be 0..255 (a uint8 on the wire)")
        if self.timeout is not None and not 0 < self.timeout < 2**63 / 1e9:
            raise ValueError("timeout must be positive and fit Go's int64 nanoseconds")
        if self.expected is not None and self.expected < 1:
            raise ValueError("expected must be at least 1")


def default_query_timeout(gossip_interval: float, members: int) -> float:
    """Serf's default: GossipInterval x 16 x ceil(log10(N + 1)), N = live members, self included."""
    return gossip_interval * QUERY_TIMEOUT_MULT * math.ceil(math.log10(max(members, 1) + 1))


def encode_filters(nodes: Sequence[str], tags: Mapping[str, str]) -> tuple[bytes, ...] | None:
    """Serf's filter list: one node filter if `nodes`, then one tag filter per tag."""
    out: list[bytes] = []
    if nodes:
        out.append(bytes((FILTER_NODE,)) + msgpack.packb(list(nodes), use_bin_type=False))
    for tag, expr in tags.items():
        body = {"Expr": expr, "Tag": tag}
        out.append(bytes((FILTER_TAG,)) + msgpack.packb(body, use_bin_type=False))
    return tuple(out) if out else None


@dataclasses.dataclass(slots=True)
class _Open:
    query: Query
    deadline: float
    expected_names: frozenset[str] | None
    expected_count: int | None
    capacity: int
    acks: set[str] = dataclasses.field(default_factory=set)
    responses: set[str] = dataclasses.field(default_factory=set)

    def complete(self) -> bool:
        if self.expected_names is not None and self.expected_names <= self.responses:
            return True
        return self.expected_count is not None and len(self.responses) >= self.expected_count


class QueryBook:
    """Queries we originated, by Lamport time (Serf registers one query per time)."""

    def __init__(self, drops: collections.Counter[str] | None = None) -> None:
        self._open: dict[int, _Open] = {}
        # Shared with the layer, so these show in the agent's `drops` (prefixed `serf_`).
        self.drops: collections.Counter[str] = drops if drops is not None else collections.Counter()

    def __len__(self) -> int:
        return len(self._open)

    def open(
        self, query: Query, params: QueryParams, *, now: float, timeout: float, members: int
    ) -> None:
        """Start collecting for `query` until `now + timeout` (ValueError when full).

        `members`: live members now; at most that many (plus slack) acks and responses
        are kept, like Serf's response channels.
        """
        if len(self._open) >= MAX_OPEN_QUERIES:
            raise ValueError(f"too many open queries (at most {MAX_OPEN_QUERIES})")
        names = None
        if params.filter_nodes and params.expected is None:
            names = frozenset(params.filter_nodes)
        capacity = max(members, params.expected or 0, len(params.filter_nodes)) + RESPONDER_SLACK
        self._open[query.ltime] = _Open(query, now + timeout, names, params.expected, capacity)

    def on_response(self, msg: QueryResponse, *, now: float) -> list[SerfEvent]:
        """An ack or response arrived: its events, and `QueryFinished` if it was the last."""
        entry = self._open.get(msg.ltime)
        if entry is None or entry.query.id != msg.id:
            self._count("query_response_unknown")
            return []
        if now > entry.deadline:
            self._count("query_response_late")
            return []
        seen = entry.acks if msg.flags & QueryFlag.ACK else entry.responses
        if msg.from_ in seen:
            return []  # relays make duplicates normal
        if len(seen) >= entry.capacity:
            self._count("query_responders_full")
            return []
        seen.add(msg.from_)
        if msg.flags & QueryFlag.ACK:
            return [QueryAckReceived(msg.ltime, msg.from_)]
        events: list[SerfEvent] = [
            QueryResponseReceived(msg.ltime, msg.from_, msg.payload or b"")
        ]
        if entry.complete():
            del self._open[msg.ltime]
            events.append(QueryFinished(msg.ltime, QueryEnd.ALL_ANSWERED))
        return events

    def expire(self, *, now: float) -> list[SerfEvent]:
        """`QueryFinished` for every query whose deadline has come."""
        done = [lt for lt, entry in self._open.items() if now >= entry.deadline]
        for ltime in done:
            del self._open[ltime]
        return [QueryFinished(ltime, QueryEnd.DEADLINE) for ltime in done]

    def next_deadline(self) -> float | None:
        return min((entry.deadline for entry in self._open.values()), default=None)

    def _count(self, reason: str) -> None:
        self.drops[reason] += 1


class AnswerBook:
    """Received queries that may still be answered: once each, before the deadline."""

    def __init__(self) -> None:
        # (ltime, id) -> deadline (None: received without a clock), oldest first.
        self._pending: dict[tuple[int, int], float | None] = {}

    def add(self, query: Query, *, now: float | None) -> float | None:
        """Remember `query` as answerable; returns its deadline (receiver's clock)."""
        deadline = None if now is None else now + max(query.timeout_ns, 0) / 1e9
        self._pending[(query.ltime, query.id)] = deadline
        while len(self._pending) > MAX_ANSWERABLE:
            del self._pending[next(iter(self._pending))]
        return deadline

    def check(self, query: Query, *, now: float | None) -> None:
        """Raise `QueryRespondError` unless `query` may be answered now."""
        key = (query.ltime, query.id)
        if key not in self._pending:
            raise QueryRespondError(_RESPOND_PREFIX + "response already sent")
        deadline = self._pending[key]
        if deadline is not None and now is not None and now > deadline:
            raise QueryRespondError(_RESPOND_PREFIX + "response is past the deadline")

    def claim(self, query: Query) -> None:
        """The response to `query` is being sent: no second one."""
        self._pending.pop((query.ltime, query.id), None)
