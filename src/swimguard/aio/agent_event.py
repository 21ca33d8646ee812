"""`AgentEvent`, what `Agent.events()` yields, and where each of the node's events goes."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Sequence
from typing import Protocol

from swimguard.aio.driver import NodeEvent
from swimguard.aio.event_buffer import EventSink, EventsLost
from swimguard.aio.member_tags import with_tags_in
from swimguard.aio.sockets import format_address
from swimguard.errors import DeliveryError, UsageError
from swimguard.protocol.events import (
    JoinCompleted,
    LeaveCompleted,
    MemberFailed,
    MemberJoined,
    MemberLeft,
    MemberSuspected,
    MemberUpdated,
    NameConflict,
    NameHeldElsewhere,
    ReliableCompleted,
    SelfFenced,
    UserMessage,
)
from swimguard.serf.events import (
    JoinIntentReceived,
    LeaveIntentReceived,
    NameConflictResolved,
    QueryReceived,
    UserEventReceived,
)
from swimguard.serf.status import MemberReaped, MemberStatusChanged

__all__ = [
    "PUBLISHED",
    "AgentEvent",
    "EventFilter",
    "EventRouter",
    "MemberReaped",
    "MemberStatusChanged",
]

AgentEvent = (
    MemberJoined
    | MemberUpdated
    | MemberSuspected
    | MemberFailed
    | MemberLeft
    | UserMessage
    | NameConflict
    | NameHeldElsewhere
    | JoinIntentReceived
    | LeaveIntentReceived
    | UserEventReceived
    | QueryReceived
    | NameConflictResolved
    | MemberStatusChanged
    | MemberReaped
    | SelfFenced
    | EventsLost
)
"""What `Agent.events()` yields: membership events, `UserMessage`, `NameConflict`,
`SelfFenced` (once, when `Config.self_fence_after` fenced us: the agent is leaving), the
Serf events of `swimguard.serf` when `serf_compat` is on (a `QueryReceived` comes with a
working `respond()`; the acks and responses to our own queries go to their `QueryHandle`),
and `EventsLost`."""

PUBLISHED = (
    MemberJoined,
    MemberUpdated,
    MemberSuspected,
    MemberFailed,
    MemberLeft,
    UserMessage,
    NameConflict,
    NameHeldElsewhere,
    JoinIntentReceived,
    LeaveIntentReceived,
    UserEventReceived,
    QueryReceived,
    NameConflictResolved,
    MemberStatusChanged,
    MemberReaped,
    SelfFenced,
)
"""The node's events the application sees. The others are the agent's business (join and
leave completions wake `join()`/`leave()`) or nobody's (ping round trips, push/pull state
that the node already merged)."""


class EventFilter(Protocol):
    """A part of the agent that sees each node event first (queries, name conflicts)."""

    def filter(self, event: NodeEvent) -> NodeEvent | None:
        """The event to pass on (possibly replaced), or None when it was consumed."""

    def close(self) -> None:
        """The agent closed."""


class EventRouter:
    """Hands each node event to the application's buffer or to the call waiting for it."""

    def __init__(self, buffer: EventSink[AgentEvent], filters: Sequence[EventFilter] = ()) -> None:
        self.buffer = buffer
        self._filters = tuple(filters)
        self._joins: collections.deque[asyncio.Future[JoinCompleted]] = collections.deque()
        self._leaves: list[asyncio.Future[LeaveCompleted]] = []
        # What a running join learnt: a seed holds our name at another address.
        self._held: NameHeldElsewhere | None = None
        self._reliable: dict[int, asyncio.Future[None]] = {}
        self.tag_members = False
        """Fill `Member.tags` on the members of published events (the agent runs Serf)."""

    def expect_join(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future[JoinCompleted]:
        """A future for the next `JoinCompleted` (the node reports joins in call order)."""
        waiter: asyncio.Future[JoinCompleted] = loop.create_future()
        self._joins.append(waiter)
        return waiter

    def expect_leave(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future[LeaveCompleted]:
        """A future for the next `LeaveCompleted` (every leave waiting takes it)."""
        waiter: asyncio.Future[LeaveCompleted] = loop.create_future()
        self._leaves.append(waiter)
        return waiter

    def expect_reliable(self, loop: asyncio.AbstractEventLoop, call: int) -> asyncio.Future[None]:
        """A future for the end of `send_reliable` call `call`: None, or `DeliveryError`."""
        waiter: asyncio.Future[None] = loop.create_future()
        # Fire and forget stays allowed: a failure nobody awaits is not logged as an
        # unretrieved exception (it is counted in drops["reliable_failed"]).
        waiter.add_done_callback(_retrieve)
        self._reliable[call] = waiter
        return waiter

    def route(self, event: NodeEvent) -> None:
        for part in self._filters:
            routed = part.filter(event)
            if routed is None:
                return
            event = routed
        if isinstance(event, NameHeldElsewhere) and self._joins:
            self._held = event
        if isinstance(event, JoinCompleted):
            event = self._refused(event)
            # One event per join() call, in call order; a timed-out call's waiter
            # is cancelled but still takes its (late) event.
            if self._joins:
                waiter = self._joins.popleft()
                if not waiter.done():
                    waiter.set_result(event)
        elif isinstance(event, LeaveCompleted):
            for leave_waiter in self._leaves:
                if not leave_waiter.done():
                    leave_waiter.set_result(event)
            self._leaves.clear()
        elif isinstance(event, ReliableCompleted):
            sent = self._reliable.pop(event.call, None)
            if sent is not None and not sent.done():
                if event.error is None:
                    sent.set_result(None)
                else:
                    where = format_address(event.to)
                    sent.set_exception(DeliveryError(f"send_reliable to {where}: {event.error}"))
        elif isinstance(event, PUBLISHED):
            self.buffer.put(with_tags_in(event) if self.tag_members else event)

    def _refused(self, event: JoinCompleted) -> JoinCompleted:
        """The join's result, failed if a seed holds our name elsewhere: its members
        refuse our alive messages, so the join reached someone but joined nobody."""
        held, self._held = self._held, None
        if held is None:
            return event
        host, port = held.addr
        shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        why = (
            f"refused: the cluster still holds this name at {shown} ({held.state.name.lower()})"
            " and ignores it at this address until it forgets that member (or its"
            " dead-node-reclaim-time passes); retry later or use another name"
        )
        return JoinCompleted(0, (*event.errors, why))

    def close(self) -> None:
        """Fail every waiting call and end the application's event stream."""
        waiters: list[asyncio.Future[JoinCompleted] | asyncio.Future[LeaveCompleted]]
        waiters = [*self._joins, *self._leaves]
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(UsageError("the agent is closed"))
        for sent in self._reliable.values():
            if not sent.done():
                sent.set_exception(
                    DeliveryError("the agent closed before the reliable message was delivered")
                )
        self._joins.clear()
        self._leaves.clear()
        self._reliable.clear()
        for part in self._filters:
            part.close()
        self.buffer.close()


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()
