"""`Connection`: one RPC client, from its handshake to its hang-up.

One task per connection reads requests one at a time, in order, like Serf's agent, and
hands each to its command's handler (`swimguard.rpc.handlers`); a second task sends
stream and monitor records from a bounded queue, so a client that stops reading loses
records (counted in the server's `drops`) instead of growing our memory.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from swimguard.rpc.codec import (
    NEED_MORE,
    FrameReader,
    ProtocolViolation,
    decode_body,
    pack,
    sorted_map,
)
from swimguard.rpc.commands import BODIES, Command, RpcError
from swimguard.rpc.event_filter import EventFilter, StreamRecord
from swimguard.rpc.handlers import HANDLERS

if TYPE_CHECKING:
    from swimguard.rpc.server import RpcServer

__all__ = ["Connection", "SharedQuery"]

log = logging.getLogger("swimguard.rpc")

_U64_MAX: Final = (1 << 64) - 1


class _Closed(Exception):
    """The peer went away, or we hung up on it."""


@dataclasses.dataclass
class SharedQuery:
    """A query every stream saw: the first `respond`, on any connection, answers it."""

    query: object
    deadline: float
    answered: bool = False


class Connection:
    """One client: its handshake/auth state, streams, monitor and outgoing record queue."""

    def __init__(
        self, server: RpcServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.frames = FrameReader(
            server.limits.max_request_bytes, max_items=server.limits.max_request_items
        )
        self.version = 0
        self.authenticated = server.auth_key == ""
        # Serf decodes every header into one struct: a header lacking a key keeps the last.
        self.last_command: object = ""
        self.last_seq: object = 0
        self.streams: dict[int, EventFilter] = {}
        self.monitoring: tuple[int, int] | None = None
        # Queries delivered to this connection's streams, by the ID it was given.
        self.queries: collections.OrderedDict[int, SharedQuery] = collections.OrderedDict()
        self.next_query_id = 1
        # Queries this client sent: tasks forwarding their acks/responses as records.
        self.sent_queries: set[asyncio.Task[None]] = set()
        self.outbox: collections.deque[bytes] = collections.deque()
        self.outbox_ready = asyncio.Event()
        self.closing = False

    @property
    def admitted(self) -> bool:
        """Shook hands and, when the server wants a token, sent the right one."""
        return self.version != 0 and self.authenticated

    # -- outgoing ----------------------------------------------------------------------

    async def reply(self, seq: int, error: str = "", body: Mapping[str, Any] | None = None) -> None:
        data = pack(sorted_map(Error=error, Seq=seq))
        if body is not None:
            data += pack(body)
        self.writer.write(data)
        await self.writer.drain()  # a client that does not read stops its own requests

    def enqueue(self, data: bytes) -> None:
        if self.closing:
            return
        if len(self.outbox) >= self.server.limits.queue_records:
            self.server.drops["records_dropped"] += 1
            return
        self.outbox.append(data)
        self.outbox_ready.set()

    def publish(self, record: StreamRecord, body: bytes) -> None:
        for seq, event_filter in self.streams.items():
            if event_filter.matches(record.kind, record.name):
                self.enqueue(pack(sorted_map(Error="", Seq=seq)) + body)

    def publish_query(self, record: StreamRecord, shared: SharedQuery) -> None:
        seqs = [
            seq for seq, event_filter in self.streams.items()
            if event_filter.matches(record.kind, record.name)
        ]
        if not seqs:
            return
        self.expire_queries()
        query_id = self.next_query_id
        self.next_query_id += 1
        self.queries[query_id] = shared
        while len(self.queries) > self.server.limits.max_queries:
            self.queries.popitem(last=False)
        body = pack(sorted_map(ID=query_id, **record.body))
        for seq in seqs:
            self.enqueue(pack(sorted_map(Error="", Seq=seq)) + body)

    def expire_queries(self) -> None:
        now = asyncio.get_running_loop().time()
        for query_id in [q for q, shared in self.queries.items() if shared.deadline < now]:
            del self.queries[query_id]

    async def _send_records(self) -> None:
        while True:
            await self.outbox_ready.wait()
            self.outbox_ready.clear()
            while self.outbox:
                self.writer.write(self.outbox.popleft())
                await self.writer.drain()

    def log_sink(self, seq: int) -> Callable[[str], None]:
        """Where the log ring hands this client's monitor its lines (from any thread)."""
        loop = asyncio.get_running_loop()
        owner = threading.get_ident()

        def deliver(line: str) -> None:
            data = pack(sorted_map(Error="", Seq=seq)) + pack({"Log": line})
            if threading.get_ident() == owner:
                self.enqueue(data)
            else:  # a log call from an executor thread
                with contextlib.suppress(RuntimeError):  # the loop has closed meanwhile
                    loop.call_soon_threadsafe(self.enqueue, data)

        return deliver

    def hang_up(self) -> None:
        self.closing = True
        self.unsubscribe()
        self.streams.clear()
        self.queries.clear()
        for task in self.sent_queries:
            task.cancel()
        self.writer.close()

    def unsubscribe(self) -> None:
        if self.monitoring is not None and self.server.log_ring is not None:
            self.server.log_ring.unsubscribe(self.monitoring[1])
        self.monitoring = None

    # -- incoming ----------------------------------------------------------------------

    def _handshake_expired(self) -> None:
        if not self.admitted and not self.closing:
            self.server.drops["handshake_timeouts"] += 1
            self.hang_up()

    async def run(self) -> None:
        sender = asyncio.create_task(self._send_records())
        timer = asyncio.get_running_loop().call_later(
            self.server.limits.handshake_timeout, self._handshake_expired
        )
        try:
            while not self.closing:
                await self._serve_one()
        except _Closed:
            pass
        except ProtocolViolation as exc:
            self.server.drops["protocol_violations"] += 1
            log.warning("RPC client %s: %s; closing the connection", self._peer(), exc)
        except (ConnectionError, OSError) as exc:
            log.debug("RPC client %s: %s", self._peer(), exc)
        except Exception:
            # A bug of ours must cost this client its connection, never the agent.
            self.server.drops["internal_errors"] += 1
            log.exception("RPC client %s: internal error; closing the connection", self._peer())
        finally:
            timer.cancel()
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
                await sender
            self.hang_up()
            with contextlib.suppress(ConnectionError, OSError):
                await self.writer.wait_closed()

    def _peer(self) -> str:
        peer = self.writer.get_extra_info("peername")
        return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "?"

    async def _read(self) -> object:
        # One object at a time, unpacked when it is wanted: what a client sends ahead waits
        # as bytes (in the unpacker, at most one request's worth, or in the socket, where
        # TCP holds the client back), never as a queue of Python objects. Requests before
        # bad bytes are still answered, as Serf does.
        while (obj := self.frames.next_object()) is NEED_MORE:
            data = await self.reader.read(65536)
            if not data:
                raise _Closed
            self.frames.feed(data)
        return obj

    async def _serve_one(self) -> None:
        header = await self._read()
        if not isinstance(header, dict) or not all(isinstance(k, str) for k in header):
            raise ProtocolViolation("request header is not a map with string keys")
        name = header.get("Command", self.last_command)
        seq = header.get("Seq", self.last_seq)
        if not isinstance(name, str):
            raise ProtocolViolation("Command is not a string")
        if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq <= _U64_MAX:
            raise ProtocolViolation("Seq is not an unsigned 64-bit integer")
        self.last_command, self.last_seq = name, seq
        if name != Command.HANDSHAKE and self.version == 0:
            await self.reply(seq, RpcError.HANDSHAKE_REQUIRED)
            raise _Closed
        if name not in (Command.HANDSHAKE, Command.AUTH) and not self.authenticated:
            # Serf does not read the body either: it is taken for the next header.
            await self.reply(seq, RpcError.AUTH_REQUIRED)
            return
        try:
            command = Command(name)
        except ValueError:
            await self.reply(seq, RpcError.UNSUPPORTED_COMMAND)
            raise _Closed from None
        schema = BODIES.get(command)
        body = decode_body(await self._read(), schema) if schema is not None else {}
        await HANDLERS[command](self, seq, body)
