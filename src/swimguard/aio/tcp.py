"""TCP side of the driver: the core's numbered streams mapped onto connections.

The core allocates stream ids, owns every deadline and says when to close
(`StreamClose`); this module only moves bytes and reports EOF, resets and
connect failures back as `stream_closed`. It adds the bounds the core cannot
enforce from inside: a cap on open connections with a share kept for our own
outbound streams and a cap per source IP (slowloris from one address cannot
shut off joins or TCP pings), a cap on unsent bytes per connection, a grace
period for flushing after close (a peer that stops reading cannot pin a
connection), and a hard lifetime for any connection.

Received bytes reach the core in bounded slices: the core parses at most
`AgentConfig.stream_decode_slice` bytes per call and says when it holds more;
the connection then stops reading, and connections with unparsed bytes take
turns, at most `stream_slices_per_turn` slices per event-loop turn for all of
them together. So no number of large or hostile streams blocks the loop for
long, and none buffers more than one socket read ahead of its decoder.

Effects (`open`, `send`, `close`) never call back into the core synchronously;
failures found while performing them are reported on the next loop turn, so
the agent's drain loop is never re-entered.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import logging
from collections.abc import Callable
from typing import Protocol

from swimguard.aio.agent_config import AgentConfig
from swimguard.aio.sockets import normalize_peer
from swimguard.protocol.outgoing import Address

CountDrop = Callable[[str], None]
DelayReply = Callable[[Callable[[], None]], None]
"""Calls its argument later (`aio.gray_fault`: replies on dialed streams read late)."""
log = logging.getLogger("swimguard.agent")

_CLOSE_TURNS = 40
"""Loop turns close_all waits for sockets to close: 20 immediate, then 20 of 10 ms."""


class StreamSink(Protocol):
    """What the stream manager reports to (the agent, which feeds the core)."""

    def stream_accepted(self, peer: Address, bind: Callable[[int], None]) -> None:
        """An inbound connection arrived; obtain its id from the core and `bind` it."""

    def stream_data(self, stream_id: int, data: bytes, max_work: int) -> bool:
        """Bytes arrived on a stream the core has not closed (`b""`: parse more of what
        it holds); parse at most `max_work` bytes (0: only buffer); True while the core
        holds bytes it has not parsed yet."""

    def stream_closed(self, stream_id: int, error: str | None) -> None:
        """The connection ended without the core asking (EOF, reset, connect failure)."""


class _State(enum.Enum):
    CONNECTING = "connecting"
    OPEN = "open"
    CLOSING = "closing"  # closed by the core, still flushing
    DONE = "done"


class _Connection(asyncio.Protocol):
    """One TCP connection, inbound or outbound."""

    def __init__(self, manager: StreamManager, *, inbound: bool) -> None:
        self.manager = manager
        self.inbound = inbound
        self.stream_id: int | None = None
        self.transport: asyncio.Transport | None = None
        self.state = _State.CONNECTING
        self.core_knows_closed = False  # the core closed it, or was told it closed
        self.pending: list[bytes] = []
        self.pending_bytes = 0
        self.timers: list[asyncio.TimerHandle] = []
        self.connect_task: asyncio.Task[None] | None = None
        self.close_requested = False
        self.peer_ip: str | None = None  # inbound: counted against its source IP
        self.queued = False  # waiting for a slice of parsing, reading paused
        self.reply_seen = inbound  # outbound: the first bytes may be held (gray fault)

    # -- asyncio.Protocol -------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.manager._connection_made(self)

    def data_received(self, data: bytes) -> None:
        if self.state is _State.OPEN and self.stream_id is not None:
            delay = self.manager._delay_reply
            if delay is not None and not self.reply_seen:
                self.reply_seen = True
                self._hold(data, delay)
                return
            self.manager._received(self, data)

    def _hold(self, data: bytes, delay: DelayReply) -> None:
        """Read the first reply bytes of a dialed stream only when `delay` says so."""
        assert self.transport is not None
        self.transport.pause_reading()

        def release() -> None:
            if self.state is not _State.OPEN or self.core_knows_closed:
                return  # the core gave up waiting (its own deadline): the reply is lost
            self.manager._received(self, data)
            transport = self.transport
            if self.state is _State.OPEN and not self.queued and transport is not None:
                transport.resume_reading()

        delay(release)

    def eof_received(self) -> bool | None:
        return False  # no half-close in memberlist: EOF ends the connection

    def connection_lost(self, exc: Exception | None) -> None:
        self.manager._connection_lost(self, exc)


class StreamManager:
    """Maps core stream ids to TCP connections, within `AgentConfig` bounds."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sink: StreamSink,
        options: AgentConfig,
        count_drop: CountDrop,
        delay_reply: DelayReply | None = None,
    ) -> None:
        self._loop = loop
        self._delay_reply = delay_reply
        self._sink = sink
        self._options = options
        self._count_drop = count_drop
        self._streams: dict[int, _Connection] = {}
        self._live: set[_Connection] = set()
        # Connections whose socket may still be open (connection_made, not yet lost).
        self._sockets: set[_Connection] = set()
        self._inbound = 0
        self._per_peer: dict[str, int] = {}
        # Connections whose bytes the core has not parsed yet, served round-robin.
        self._backlog: collections.deque[_Connection] = collections.deque()
        self._slices_left = options.stream_slices_per_turn
        self._turn: asyncio.Handle | None = None
        self._closed = False

    @property
    def open_connections(self) -> int:
        """Connections that hold a socket or a connect attempt right now."""
        return len(self._live)

    def protocol_factory(self) -> asyncio.Protocol:
        """Protocol factory for the `Listener`: one inbound `_Connection` per accept."""
        return _Connection(self, inbound=True)

    # -- effects from the core --------------------------------------------

    def open(self, stream_id: int, to: Address) -> None:
        """Start connecting to `to` for stream `stream_id`."""
        if self._closed:
            self._report_later(stream_id, "agent closed")
            return
        if len(self._live) >= self._options.max_streams:
            self._count_drop("tcp_conn_limit")
            self._report_later(stream_id, "too many open connections")
            return
        conn = _Connection(self, inbound=False)
        conn.stream_id = stream_id
        self._streams[stream_id] = conn
        self._live.add(conn)
        self._arm_lifetime(conn)
        conn.connect_task = self._loop.create_task(self._connect(conn, to))

    def send(self, stream_id: int, data: bytes) -> None:
        """Write `data` on stream `stream_id` (queued while connecting)."""
        conn = self._streams.get(stream_id)
        if conn is None:
            self._count_drop("tcp_send_unknown_stream")
            return
        if conn.transport is None:
            conn.pending.append(data)
            conn.pending_bytes += len(data)
            if conn.pending_bytes > self._options.max_stream_buffer_bytes:
                self._fail(conn, "tcp_write_overflow")
            return
        conn.transport.write(data)
        if conn.transport.get_write_buffer_size() > self._options.max_stream_buffer_bytes:
            self._fail(conn, "tcp_write_overflow")

    def close(self, stream_id: int) -> None:
        """Close stream `stream_id` after flushing; the core expects no report."""
        conn = self._streams.pop(stream_id, None)
        if conn is None:
            return
        conn.core_knows_closed = True
        if conn.transport is None:
            # Still connecting (send_reliable opens, sends and closes at once):
            # flush the queued bytes once connected, then close; a connect that
            # hangs (a black-holed peer) gets the same grace as a stuck flush.
            conn.close_requested = True
            conn.timers.append(
                self._loop.call_later(self._options.stream_close_grace, self._close_overdue, conn)
            )
            return
        self._begin_close(conn)

    async def close_all(self) -> None:
        """Abort every connection and connect attempt (agent shutdown), and wait for them."""
        self._closed = True
        if self._turn is not None:
            self._turn.cancel()
            self._turn = None
        tasks: list[asyncio.Task[None]] = []
        for conn in list(self._live):
            conn.core_knows_closed = True
            if conn.connect_task is not None and not conn.connect_task.done():
                conn.connect_task.cancel()
                tasks.append(conn.connect_task)
            if conn.transport is not None:
                conn.transport.abort()
            self._finish(conn)
        self._streams.clear()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        # abort() closes a socket on a later loop turn: wait for every one (bounded), or
        # it could outlive its event loop.
        for turn in range(_CLOSE_TURNS):
            if not self._sockets:
                break
            await asyncio.sleep(0 if turn < _CLOSE_TURNS // 2 else 0.01)

    # -- internals ----------------------------------------------------------

    async def _connect(self, conn: _Connection, to: Address) -> None:
        host, port = to
        try:
            await self._loop.create_connection(lambda: conn, host, port)
        except OSError as exc:
            if conn.state is not _State.DONE:
                self._fail(conn, None, error=f"connect to {host}:{port} failed: {exc}")
                log.debug("stream %s: connect to %s:%s failed: %s", conn.stream_id, host, port, exc)

    def _connection_made(self, conn: _Connection) -> None:
        assert conn.transport is not None
        self._sockets.add(conn)
        if conn.inbound:
            peer = conn.transport.get_extra_info("peername")
            address = normalize_peer(peer) if peer else ("", 0)
            reason = self._refuse_inbound(address[0])
            if reason is not None:
                self._count_drop(reason)
                conn.state = _State.DONE
                conn.transport.abort()
                return
            self._live.add(conn)
            self._inbound += 1
            conn.peer_ip = address[0]
            self._per_peer[address[0]] = self._per_peer.get(address[0], 0) + 1
            conn.state = _State.OPEN
            self._arm_lifetime(conn)
            self._sink.stream_accepted(address, lambda sid: self._bind(conn, sid))
            return
        if conn.state is _State.DONE:
            # Closed by the core while the connect was finishing.
            conn.transport.abort()
            return
        conn.state = _State.OPEN
        pending, conn.pending, conn.pending_bytes = conn.pending, [], 0
        for chunk in pending:
            conn.transport.write(chunk)
        if conn.close_requested:
            self._begin_close(conn)

    def _refuse_inbound(self, ip: str) -> str | None:
        """The drop reason if an inbound connection from `ip` must be cut, else None."""
        options = self._options
        if self._closed or len(self._live) >= options.max_streams:
            return "tcp_conn_limit"
        if self._inbound >= options.max_inbound_streams:
            return "tcp_conn_limit"  # the rest is kept for our own outbound streams
        if self._per_peer.get(ip, 0) >= options.max_inbound_per_peer:
            return "tcp_peer_limit"
        return None

    def _received(self, conn: _Connection, data: bytes) -> None:
        assert conn.stream_id is not None
        # Parse a slice now if this turn has one left and nobody is waiting for it;
        # else only hand the bytes over, and wait in line.
        work = 0
        if self._slices_left > 0 and not self._backlog:
            work = self._options.stream_decode_slice
            self._spend_slice()
        if self._sink.stream_data(conn.stream_id, data, work):
            self._wait_in_line(conn)

    def _spend_slice(self) -> None:
        self._slices_left -= 1
        if self._turn is None:
            self._turn = self._loop.call_soon(self._next_turn)

    def _wait_in_line(self, conn: _Connection) -> None:
        if conn.transport is None or conn.state is not _State.OPEN or conn.queued:
            return
        if conn.transport.is_reading():
            conn.transport.pause_reading()
        conn.queued = True
        self._backlog.append(conn)
        if self._turn is None:
            self._turn = self._loop.call_soon(self._next_turn)

    def _next_turn(self) -> None:
        """A new loop turn: its slices go to the waiting connections first, in turn."""
        self._turn = None
        self._slices_left = self._options.stream_slices_per_turn
        backlog = self._backlog
        while backlog and self._slices_left > 0:
            conn = backlog.popleft()
            conn.queued = False
            sid = conn.stream_id
            if conn.state is not _State.OPEN or conn.core_knows_closed or sid is None:
                continue
            self._spend_slice()
            if self._sink.stream_data(sid, b"", self._options.stream_decode_slice):
                self._wait_in_line(conn)
            elif conn.transport is not None and conn.state is _State.OPEN:
                conn.transport.resume_reading()
        if backlog and self._turn is None:
            self._turn = self._loop.call_soon(self._next_turn)

    def _bind(self, conn: _Connection, stream_id: int) -> None:
        conn.stream_id = stream_id
        if conn.state is _State.OPEN:
            self._streams[stream_id] = conn

    def _connection_lost(self, conn: _Connection, exc: Exception | None) -> None:
        self._sockets.discard(conn)
        was_reported = conn.core_knows_closed
        self._finish(conn)
        sid = conn.stream_id
        if was_reported or sid is None:
            return
        conn.core_knows_closed = True
        if self._streams.get(sid) is conn:
            del self._streams[sid]
        self._sink.stream_closed(sid, None if exc is None else f"connection lost: {exc}")

    def _begin_close(self, conn: _Connection) -> None:
        assert conn.transport is not None
        conn.state = _State.CLOSING
        conn.transport.close()
        if conn.transport.get_write_buffer_size() > 0:
            conn.timers.append(
                self._loop.call_later(self._options.stream_close_grace, self._close_overdue, conn)
            )

    def _close_overdue(self, conn: _Connection) -> None:
        if conn.state is _State.DONE:
            return
        self._count_drop("tcp_close_stuck")
        if conn.transport is not None:
            conn.transport.abort()
        else:
            if conn.connect_task is not None:
                conn.connect_task.cancel()
            self._finish(conn)

    def _arm_lifetime(self, conn: _Connection) -> None:
        conn.timers.append(
            self._loop.call_later(self._options.stream_max_lifetime, self._expire, conn)
        )

    def _expire(self, conn: _Connection) -> None:
        if conn.state is not _State.DONE:
            self._fail(conn, "tcp_lifetime_exceeded")

    def _fail(self, conn: _Connection, reason: str | None, *, error: str | None = None) -> None:
        """Abort `conn` and tell the core (on the next loop turn) if it does not know."""
        if reason is not None:
            self._count_drop(reason)
        if conn.connect_task is not None and conn.transport is None:
            conn.connect_task.cancel()
        if conn.transport is not None:
            conn.transport.abort()
        sid = conn.stream_id
        notify = not conn.core_knows_closed and sid is not None
        conn.core_knows_closed = True
        self._finish(conn)
        if notify and sid is not None:
            if self._streams.get(sid) is conn:
                del self._streams[sid]
            self._report_later(sid, error or reason)

    def _finish(self, conn: _Connection) -> None:
        if conn.peer_ip is not None:
            self._inbound -= 1
            left = self._per_peer[conn.peer_ip] - 1
            if left:
                self._per_peer[conn.peer_ip] = left
            else:
                del self._per_peer[conn.peer_ip]
            conn.peer_ip = None
        if conn.queued:
            conn.queued = False
            self._backlog.remove(conn)
        conn.state = _State.DONE
        conn.pending, conn.pending_bytes = [], 0
        for timer in conn.timers:
            timer.cancel()
        conn.timers.clear()
        self._live.discard(conn)

    def _report_later(self, stream_id: int, error: str | None) -> None:
        self._loop.call_soon(self._sink.stream_closed, stream_id, error)
