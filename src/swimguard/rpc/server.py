"""`RpcServer`: Serf's agent RPC on a TCP port, so the `serf` CLI, serfclient and other Serf
clients work against a swimguard agent.

The server listens, admits connections within `RpcLimits` and fans published records out
to every client's streams (member events coalesced as on a serf agent). Each client is a
`swimguard.rpc.connection.Connection`; each command a handler in `swimguard.rpc.handlers`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
from collections.abc import Callable
from typing import Final

from swimguard.rpc.backend import RpcBackend
from swimguard.rpc.coalesce import MemberEventCoalescer, UserEventCoalescer
from swimguard.rpc.codec import MAX_REQUEST_ITEMS, pack
from swimguard.rpc.connection import Connection, SharedQuery
from swimguard.rpc.event_filter import EventKind, StreamRecord
from swimguard.rpc.log_ring import LogRing

__all__ = ["RpcLimits", "RpcServer"]

log = logging.getLogger("swimguard.rpc")


@dataclasses.dataclass(frozen=True, slots=True)
class RpcLimits:
    """Bounds on what clients may make the server hold."""

    max_connections: int = 64
    """Connections held at once. At the limit a new connection takes the slot of the
    oldest one still without a handshake (or auth, when a token is set), which is closed
    (`connections_evicted`), so idle sockets cannot lock clients out; if every slot is a
    client that shook hands, the new one is closed at once (`connections_refused`)."""
    queue_records: int = 1024
    """Stream/monitor records waiting to be sent per connection; more are dropped."""
    max_request_bytes: int = 1024 * 1024
    """Largest msgpack object a client may send; a bigger one closes the connection."""
    max_request_items: int = MAX_REQUEST_ITEMS
    """Maps, arrays and their elements one request object may hold; more close the
    connection (a small request must not unpack into a huge number of Python objects)."""
    max_streams: int = 64
    """Streams one connection may hold."""
    max_join_addresses: int = 256
    """Addresses one `join` may name (each may need a DNS lookup)."""
    max_queries: int = 512
    """Queries one connection may hold open for `respond` (the oldest is dropped beyond),
    and queries it may have running that it sent itself (more are refused)."""
    handshake_timeout: float = 30.0
    """Seconds a new connection has to complete its handshake (and auth, when a token is
    set); else it is closed (counted as `handshake_timeouts`)."""


_MEMBER_KINDS: Final = frozenset({
    EventKind.MEMBER_JOIN,
    EventKind.MEMBER_LEAVE,
    EventKind.MEMBER_FAILED,
    EventKind.MEMBER_UPDATE,
    EventKind.MEMBER_REAP,
})


class RpcServer:
    """Serves `backend` to RPC clients; feed it events with `publish`."""

    def __init__(
        self,
        backend: RpcBackend,
        *,
        auth_key: str = "",
        log_ring: LogRing | None = None,
        limits: RpcLimits | None = None,
        on_leave: Callable[[], None] | None = None,
        coalesce_members: bool = True,
    ) -> None:
        self.backend = backend
        # Member events, and user events sent with Coalesce, wait for Serf's coalescing
        # (1 s quiet / 3 s at most) before streams see them, as on a serf agent; None
        # sends them as they come.
        self._coalescer = MemberEventCoalescer() if coalesce_members else None
        self._user_coalescer = UserEventCoalescer() if coalesce_members else None
        self._flush_at: asyncio.TimerHandle | None = None
        self.on_leave = on_leave
        """Called once a `leave` command has been answered (Serf then shuts down)."""
        self.auth_key = auth_key
        self.log_ring = log_ring
        self.limits = limits if limits is not None else RpcLimits()
        self.drops: collections.Counter[str] = collections.Counter()
        self._server: asyncio.Server | None = None
        # In arrival order: the oldest connection not yet admitted is the one evicted.
        self._connections: dict[Connection, None] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._address: tuple[str, int] | None = None
        self._closing = False

    async def start(self, host: str, port: int) -> None:
        """Listen on `host:port`; OSError names the address when it cannot be bound."""
        self._loop = asyncio.get_running_loop()
        try:
            self._server = await asyncio.start_server(self._accept, host, port)
        except OSError as exc:
            where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            raise OSError(exc.errno, f"cannot listen on {where}: {exc.strerror or exc}") from None
        sockname = self._server.sockets[0].getsockname()
        self._address = (sockname[0], sockname[1])

    @property
    def address(self) -> tuple[str, int]:
        """The `(host, port)` listened on."""
        if self._address is None:
            raise RuntimeError("RPC server not started")
        return self._address

    @property
    def connections(self) -> int:
        return len(self._connections)

    async def close(self) -> None:
        """Stop listening and hang up on every client."""
        self._closing = True
        if self._flush_at is not None:
            self._flush_at.cancel()
            self._flush_at = None
        if self._server is not None:
            self._server.close()
        for conn in list(self._connections):
            conn.hang_up()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    def publish(self, record: StreamRecord) -> None:
        """Send `record` to every stream whose filter it passes (member events coalesced)."""
        loop = self._loop
        if self._coalescer is not None and record.kind in _MEMBER_KINDS and loop is not None:
            self._coalescer.add(record, now=loop.time())
            self._schedule_flush()
            return
        user = self._user_coalescer
        if user is not None and loop is not None and user.add(record, now=loop.time()):
            self._schedule_flush()
            return
        self._send(record)

    def _schedule_flush(self) -> None:
        assert self._coalescer is not None
        assert self._loop is not None
        if self._flush_at is not None:
            self._flush_at.cancel()
            self._flush_at = None
        deadlines = [c.deadline() for c in (self._coalescer, self._user_coalescer) if c]
        due = [d for d in deadlines if d is not None]
        if due:
            self._flush_at = self._loop.call_at(min(due), self._flush)

    def _flush(self) -> None:
        assert self._coalescer is not None
        assert self._loop is not None
        self._flush_at = None
        now = self._loop.time()
        for record in self._coalescer.flush(now=now):
            self._send(record)
        if self._user_coalescer is not None:
            for record in self._user_coalescer.flush(now=now):
                self._send(record)
        self._schedule_flush()

    def _send(self, record: StreamRecord) -> None:
        if record.query is not None:
            shared = SharedQuery(record.query, record.deadline)
            for conn in self._connections:
                conn.publish_query(record, shared)
            return
        body = pack(record.body)
        for conn in self._connections:
            conn.publish(record, body)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._connections) >= self.limits.max_connections and not self._evict():
            self.drops["connections_refused"] += 1
            writer.close()
            return
        conn = Connection(self, reader, writer)
        self._connections[conn] = None
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await conn.run()
        except asyncio.CancelledError:
            # close() cancels us; asyncio's stream callback would log a cancelled
            # connection task as an error, so end quietly when that is the reason.
            if not self._closing:
                raise
        finally:
            self._connections.pop(conn, None)
            if task is not None:
                self._tasks.discard(task)

    def _evict(self) -> bool:
        """Close the oldest connection not yet admitted; False if every one is."""
        victim = next((c for c in self._connections if not c.admitted), None)
        if victim is None:
            return False
        self.drops["connections_evicted"] += 1
        del self._connections[victim]  # its slot is free now, though its task ends later
        victim.hang_up()
        return True
