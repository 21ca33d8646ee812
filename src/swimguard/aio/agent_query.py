"""Serf queries on the `Agent`: `Agent.query()` and its `QueryHandle`, answering `QueryReceived`.

`QueryDesk` sits between the driver and the application's event buffer: the acks,
responses and ends of our own queries go to the handle that waits for them (they are not
application events), and every `QueryReceived` gets a `respond()` bound to this agent.
`AgentQueries` is the part of the `Agent` that starts queries; it only turns the call into
the node's `query` input and hands back the handle.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from swimguard.aio.agent_conflict import NameConflictWatch
from swimguard.aio.driver import DrivenNode, Driver, NodeEvent
from swimguard.errors import UsageError
from swimguard.serf.events import (
    QueryAckReceived,
    QueryEnd,
    QueryFinished,
    QueryReceived,
    QueryResponseReceived,
)
from swimguard.serf.layer import INTERNAL_PREFIX
from swimguard.serf.node import SerfNode
from swimguard.serf.query import QueryParams

if TYPE_CHECKING:
    from swimguard.aio.agent_event import EventFilter

__all__ = ["AgentQueries", "QueryDesk", "QueryHandle", "QueryItem"]

QueryItem = QueryAckReceived | QueryResponseReceived
"""What iterating a `QueryHandle` yields."""

Running = Callable[[], tuple[DrivenNode, Driver]]


class QueryHandle:
    """One query we sent: `async for item in handle` yields acks and responses as they come.

    Iteration ends when the query finishes: at its deadline, or as soon as every expected
    responder answered (`QueryParams.expected`, or the named `filter_nodes`). `acks`,
    `responses` and `finished` keep what arrived, so `await handle.wait()` then reading
    them works too. Each member is counted once per kind, as Serf does.
    """

    def __init__(self, ltime: int, name: str) -> None:
        self.ltime = ltime
        self.name = name
        self.acks: list[str] = []
        self.responses: dict[str, bytes] = {}
        self.finished: QueryEnd | None = None
        self._items: asyncio.Queue[QueryItem | None] = asyncio.Queue()
        self._done = asyncio.Event()

    def __aiter__(self) -> QueryHandle:
        return self

    async def __anext__(self) -> QueryItem:
        item = await self._items.get()
        if item is None:
            self._items.put_nowait(None)  # later iterations end too
            raise StopAsyncIteration
        return item

    async def wait(self) -> QueryHandle:
        """Wait until the query has finished; returns the handle."""
        await self._done.wait()
        return self

    def _add(self, item: QueryItem) -> None:
        if isinstance(item, QueryAckReceived):
            self.acks.append(item.from_)
        else:
            self.responses[item.from_] = item.payload
        self._items.put_nowait(item)

    def _finish(self, reason: QueryEnd) -> None:
        if self.finished is None:
            self.finished = reason
            self._items.put_nowait(None)
            self._done.set()


class QueryDesk:
    """Routes query events: ours to their handles, received ones out with a responder."""

    def __init__(self, running: Running) -> None:
        self._running = running
        self._open: dict[int, QueryHandle] = {}
        self.closed = False

    def check_open(self) -> None:
        """Raise `UsageError` once the agent has closed (nothing would be sent or heard)."""
        if self.closed:
            raise UsageError("the agent is closed")

    def register(self, handle: QueryHandle) -> None:
        self._open[handle.ltime] = handle

    def filter(self, event: NodeEvent) -> NodeEvent | None:
        """The event to publish in its place, or None when it was ours to consume."""
        if isinstance(event, QueryAckReceived | QueryResponseReceived):
            handle = self._open.get(event.ltime)
            if handle is not None:
                handle._add(event)
            return None
        if isinstance(event, QueryFinished):
            finished = self._open.pop(event.ltime, None)
            if finished is not None:
                finished._finish(event.reason)
            return None
        if isinstance(event, QueryReceived):
            query = event.query

            def respond(payload: bytes) -> None:
                self.check_open()
                node, driver = self._running()
                assert isinstance(node, SerfNode)
                node.respond(query, payload, now=driver.now())  # raises with Serf's text
                driver.drain()

            return dataclasses.replace(event, responder=respond)
        return event

    def close(self) -> None:
        """The agent closed: every open query ends now."""
        self.closed = True
        for handle in self._open.values():
            handle._finish(QueryEnd.CLOSED)
        self._open.clear()


class AgentQueries:
    """The `Agent`'s query API and the parts that see its events first.

    The agent provides `name`, `_serf_compat`, `_running` and `close`, and builds its
    `EventRouter` with `_event_filters()`.
    """

    name: str
    _serf_compat: bool
    _desk: QueryDesk
    _conflict_watch: NameConflictWatch
    _stopping: asyncio.Task[None] | None = None

    def _running(self) -> tuple[DrivenNode, Driver]:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    def _event_filters(self) -> tuple[EventFilter, ...]:
        self._desk = QueryDesk(self._running)
        self._conflict_watch = NameConflictWatch(self.name, self._stop_after_conflict)
        return (self._conflict_watch, self._desk)

    def _stop_after_conflict(self) -> None:
        # Serf shuts down without leaving: a leave would mark the name (the other member's
        # now) as left everywhere.
        self._stopping = asyncio.get_running_loop().create_task(self.close())

    @property
    def lost_name_conflict(self) -> bool:
        """True once this agent lost Serf's vote on its name and stopped (see docs)."""
        return self._conflict_watch.lost

    def query(
        self,
        name: str,
        payload: bytes = b"",
        *,
        filter_nodes: Sequence[str] = (),
        filter_tags: Mapping[str, str] | None = None,
        request_ack: bool = False,
        relay_factor: int = 0,
        timeout: float | None = None,
        expected: int | None = None,
    ) -> QueryHandle:
        """Send a Serf query to the cluster (us included); returns its `QueryHandle`.

        `filter_nodes`/`filter_tags` (tag -> Go regexp) select responders; `timeout`
        (seconds) defaults to Serf's (gossip interval x 16 x ceil(log10(N + 1))).
        `ValueError` with Serf's text as `serf query` refuses: `_serf_` names, more than
        1024 bytes encoded. Needs `serf_compat`.
        """
        if name.startswith(INTERNAL_PREFIX) and not (name == "_serf_ping" and not payload):
            raise ValueError("Queries cannot contain the '_serf_' prefix")
        params = QueryParams(
            filter_nodes=tuple(filter_nodes),
            filter_tags=dict(filter_tags or {}),
            request_ack=request_ack,
            relay_factor=relay_factor,
            timeout=timeout,
            expected=expected,
        )
        return self._start_query(name, bytes(payload), params)

    def _start_query(self, name: str, payload: bytes, params: QueryParams) -> QueryHandle:
        """Any query, internal names included (the key manager and conflict checks use it)."""
        if not self._serf_compat:
            raise UsageError("queries need serf_compat=True")
        node, driver = self._running()
        self._desk.check_open()
        assert isinstance(node, SerfNode)
        ltime = node.query(name, payload, params, now=driver.now())
        handle = QueryHandle(ltime, name)
        # Registered before the drain that delivers our own ack and answer.
        self._desk.register(handle)
        driver.drain()
        return handle
