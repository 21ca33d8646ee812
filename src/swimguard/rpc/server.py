"""`RpcServer`: Serf's agent RPC on a TCP port, so the `serf` CLI, serfclient and other Serf
clients work against a swimguard agent.

One task per connection reads requests one at a time, in order, like Serf's agent; a
second task per connection sends stream and monitor records from a bounded queue, so a
client that stops reading loses records (counted in `drops`) instead of growing our
memory. Commands are looked up in a table keyed by `Command`: adding one is one handler.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import hmac
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Final

import re2

from swimguard.rpc.backend import BackendError, KeyCommand, QueryItemKind, RpcBackend
from swimguard.rpc.coalesce import MemberEventCoalescer, UserEventCoalescer
from swimguard.rpc.codec import FrameReader, ProtocolViolation, decode_body, pack, sorted_map
from swimguard.rpc.commands import BODIES, IPC_VERSION, Command, RpcError
from swimguard.rpc.event_filter import EventFilter, EventKind, StreamRecord, parse_event_filter
from swimguard.rpc.explain_cmd import UNKNOWN_MEMBER
from swimguard.rpc.log_ring import LogLevel, LogRing
from swimguard.rpc.members import RpcMember

__all__ = ["RpcLimits", "RpcServer"]

log = logging.getLogger("swimguard.rpc")

_U64_MAX: Final = (1 << 64) - 1


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


class _Closed(Exception):
    """The peer went away, or we hung up on it."""


@dataclasses.dataclass
class _SharedQuery:
    """A query every stream saw: the first `respond`, on any connection, answers it."""

    query: object
    deadline: float
    answered: bool = False


_MEMBER_KINDS: Final = frozenset({
    EventKind.MEMBER_JOIN,
    EventKind.MEMBER_LEAVE,
    EventKind.MEMBER_FAILED,
    EventKind.MEMBER_UPDATE,
    EventKind.MEMBER_REAP,
})

_RESPOND_FAILED: Final = "failed to respond to key query: {}"
"""Serf's text for every respond failure (it says "key query" for all queries)."""


_Handler = Callable[["_Connection", int, dict[str, Any]], Awaitable[None]]


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
        self._connections: dict[_Connection, None] = {}
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
            shared = _SharedQuery(record.query, record.deadline)
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
        conn = _Connection(self, reader, writer)
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

    def _deliver_log(self, conn: _Connection, seq: int) -> Callable[[str], None]:
        loop = self._loop
        assert loop is not None
        owner = threading.get_ident()

        def deliver(line: str) -> None:
            data = pack(sorted_map(Error="", Seq=seq)) + pack({"Log": line})
            if threading.get_ident() == owner:
                conn.enqueue(data)
            else:  # a log call from an executor thread
                with contextlib.suppress(RuntimeError):  # the loop has closed meanwhile
                    loop.call_soon_threadsafe(conn.enqueue, data)

        return deliver


class _Connection:
    """One client: its handshake/auth state, streams, monitor and outgoing record queue."""

    def __init__(
        self, server: RpcServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.frames = FrameReader(server.limits.max_request_bytes)
        self.pending: collections.deque[object] = collections.deque()
        self.broken: ProtocolViolation | None = None
        self.version = 0
        self.authenticated = server.auth_key == ""
        # Serf decodes every header into one struct: a header lacking a key keeps the last.
        self.last_command: object = ""
        self.last_seq: object = 0
        self.streams: dict[int, EventFilter] = {}
        self.monitoring: tuple[int, int] | None = None
        # Queries delivered to this connection's streams, by the ID it was given.
        self.queries: collections.OrderedDict[int, _SharedQuery] = collections.OrderedDict()
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

    def publish_query(self, record: StreamRecord, shared: _SharedQuery) -> None:
        seqs = [
            seq for seq, event_filter in self.streams.items()
            if event_filter.matches(record.kind, record.name)
        ]
        if not seqs:
            return
        self._expire_queries()
        query_id = self.next_query_id
        self.next_query_id += 1
        self.queries[query_id] = shared
        while len(self.queries) > self.server.limits.max_queries:
            self.queries.popitem(last=False)
        body = pack(sorted_map(ID=query_id, **record.body))
        for seq in seqs:
            self.enqueue(pack(sorted_map(Error="", Seq=seq)) + body)

    def _expire_queries(self) -> None:
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

    def hang_up(self) -> None:
        self.closing = True
        self._unsubscribe()
        self.streams.clear()
        self.queries.clear()
        for task in self.sent_queries:
            task.cancel()
        self.writer.close()

    def _unsubscribe(self) -> None:
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
        while not self.pending:
            if self.broken is not None:
                raise self.broken
            data = await self.reader.read(65536)
            if not data:
                raise _Closed
            try:
                self.frames.feed(data)
                for obj in self.frames.objects():
                    self.pending.append(obj)
            except ProtocolViolation as exc:
                # Requests before the garbage are still answered, as Serf would.
                self.broken = exc
        return self.pending.popleft()

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

    # -- commands ----------------------------------------------------------------------

    async def handshake(self, seq: int, body: dict[str, Any]) -> None:
        if self.version != 0:
            await self.reply(seq, RpcError.DUPLICATE_HANDSHAKE)
        elif body["Version"] != IPC_VERSION:
            await self.reply(seq, RpcError.UNSUPPORTED_VERSION)
        else:
            self.version = IPC_VERSION
            await self.reply(seq)

    async def auth(self, seq: int, body: dict[str, Any]) -> None:
        if hmac.compare_digest(body["AuthKey"].encode(), self.server.auth_key.encode()):
            self.authenticated = True
            await self.reply(seq)
        else:
            await self.reply(seq, RpcError.INVALID_AUTH)

    async def members(self, seq: int, body: dict[str, Any]) -> None:
        del body
        members = [m.to_wire() for m in self.server.backend.members()]
        await self.reply(seq, body={"Members": members})

    async def members_filtered(self, seq: int, body: dict[str, Any]) -> None:
        tags: dict[str, str] = body["Tags"] or {}
        try:
            # Serf anchors by concatenation ("^" + p + "$"); RE2's "$" is end of text, as Go's.
            tag_res = {k: _anchored(p) for k, p in tags.items()}
            status_re = _anchored(body["Status"]) if body["Status"] else None
            name_re = _anchored(body["Name"]) if body["Name"] else None
        except re2.error as exc:
            # Serf hangs up without a reply here; the log says why.
            raise ProtocolViolation(f"Failed to compile regex: {exc}") from None

        def keep(m: RpcMember) -> bool:
            if status_re is not None and not status_re.search(m.status.value):
                return False
            if name_re is not None and not name_re.search(m.name):
                return False
            return all(r.search(m.tags.get(k, "")) for k, r in tag_res.items())

        members = [m.to_wire() for m in self.server.backend.members() if keep(m)]
        await self.reply(seq, body={"Members": members})

    async def join(self, seq: int, body: dict[str, Any]) -> None:
        limit = self.server.limits.max_join_addresses
        if len(body["Existing"] or []) > limit:
            await self.reply(seq, f"at most {limit} addresses per join", {"Num": 0})
            return
        try:
            num = await self.server.backend.join(body["Existing"] or [], replay=body["Replay"])
        except BackendError as exc:
            await self.reply(seq, str(exc), {"Num": 0})
        else:
            await self.reply(seq, body={"Num": num})

    async def leave(self, seq: int, body: dict[str, Any]) -> None:
        del body
        try:
            await self.server.backend.leave()
        except BackendError as exc:
            await self.reply(seq, str(exc))
            return
        await self.reply(seq)
        if self.server.on_leave is not None:
            self.server.on_leave()

    async def event(self, seq: int, body: dict[str, Any]) -> None:
        name: str = body["Name"]
        payload: bytes | None = body["Payload"]
        coalesce: bool = body["Coalesce"]
        try:
            ltime = self.server.backend.user_event(name, payload or b"", coalesce=coalesce)
        except BackendError as exc:
            await self.reply(seq, str(exc))
            return
        await self.reply(seq)
        # Serf delivers our own user events to our own streams too.
        self.server.publish(user_record(name, payload, ltime, coalesce))

    async def tags(self, seq: int, body: dict[str, Any]) -> None:
        tags = dict(self.server.backend.tags)
        for key in body["DeleteTags"] or []:
            tags.pop(key, None)
        tags.update(body["Tags"] or {})
        try:
            await self.server.backend.set_tags(tags)
        except BackendError as exc:
            await self.reply(seq, str(exc))
        else:
            await self.reply(seq)

    async def stream(self, seq: int, body: dict[str, Any]) -> None:
        event_filter = parse_event_filter(body["Type"])
        if event_filter is None:
            await self.reply(seq, RpcError.INVALID_FILTER)
        elif seq in self.streams:
            await self.reply(seq, RpcError.STREAM_EXISTS)
        elif len(self.streams) >= self.server.limits.max_streams:
            await self.reply(seq, f"at most {self.server.limits.max_streams} streams per client")
        else:
            await self.reply(seq)
            self.streams[seq] = event_filter

    async def monitor(self, seq: int, body: dict[str, Any]) -> None:
        wanted = body["LogLevel"].upper()
        try:
            level = LogLevel[wanted]
        except KeyError:
            await self.reply(seq, f"Unknown log level: {wanted}")
            return
        ring = self.server.log_ring
        if self.monitoring is not None:
            await self.reply(seq, RpcError.MONITOR_EXISTS)
        elif ring is None:
            await self.reply(seq, "this agent keeps no log")
        else:
            await self.reply(seq)
            subscription = ring.subscribe(level, self.server._deliver_log(self, seq))
            self.monitoring = (seq, subscription)

    async def stop(self, seq: int, body: dict[str, Any]) -> None:
        target: int = body["Stop"]
        self.streams.pop(target, None)
        if self.monitoring is not None and self.monitoring[0] == target:
            self._unsubscribe()
        await self.reply(seq)

    async def stats(self, seq: int, body: dict[str, Any]) -> None:
        del body
        await self.reply(seq, body=self.server.backend.stats())

    async def respond(self, seq: int, body: dict[str, Any]) -> None:
        self._expire_queries()
        shared = self.queries.get(body["ID"])
        if shared is None:
            await self.reply(seq, RpcError.NO_PENDING_QUERY)
            return
        if shared.answered:
            await self.reply(seq, _RESPOND_FAILED.format("response already sent"))
            return
        try:
            self.server.backend.respond(shared.query, body["Payload"] or b"")
        except BackendError as exc:  # Serf's full text
            await self.reply(seq, str(exc))
            return
        shared.answered = True
        await self.reply(seq)

    async def force_leave(self, seq: int, body: dict[str, Any]) -> None:
        try:
            self.server.backend.force_leave(body["Node"], prune=body["Prune"])
        except BackendError as exc:
            await self.reply(seq, str(exc))
        else:
            await self.reply(seq)

    async def query(self, seq: int, body: dict[str, Any]) -> None:
        """Send a query; its acks, responses and one `done` follow as records of `seq`."""
        if len(self.sent_queries) >= self.server.limits.max_queries:
            await self.reply(seq, f"at most {self.server.limits.max_queries} queries at a time")
            return
        timeout_ns: int = body["Timeout"]
        try:
            items = self.server.backend.query(
                body["Name"],
                body["Payload"] or b"",
                filter_nodes=body["FilterNodes"] or [],
                filter_tags=body["FilterTags"] or {},
                request_ack=body["RequestAck"],
                relay_factor=min(body["RelayFactor"], 255),
                timeout=timeout_ns / 1e9 if timeout_ns > 0 else None,
            )
        except BackendError as exc:
            await self.reply(seq, str(exc))
            return
        await self.reply(seq)
        task = asyncio.create_task(self._forward_query(seq, items))
        self.sent_queries.add(task)
        task.add_done_callback(self.sent_queries.discard)

    async def _forward_query(
        self, seq: int, items: AsyncIterator[tuple[QueryItemKind, str, bytes | None]]
    ) -> None:
        head = pack(sorted_map(Error="", Seq=seq))
        try:
            async for kind, sender, payload in items:
                record = sorted_map(From=sender, Payload=payload, Type=kind.value)
                self.enqueue(head + pack(record))
        except Exception:  # the agent closed under the query: no records, still a done
            log.debug("RPC query %d ended early", seq, exc_info=True)
        self.enqueue(head + pack(sorted_map(From="", Payload=None, Type=QueryItemKind.DONE.value)))

    async def keys(self, seq: int, body: dict[str, Any]) -> None:
        """install-key, use-key, remove-key, list-keys: Serf's key manager over the cluster."""
        command = KeyCommand(str(self.last_command))
        result = await self.server.backend.key_command(command, body.get("Key", ""))
        listing = command is KeyCommand.LIST
        reply = sorted_map(
            Keys=dict(result.keys) if listing else None,
            Messages=dict(result.messages),
            NumErr=result.num_err,
            NumNodes=result.num_nodes,
            NumResp=result.num_resp,
        )
        await self.reply(seq, result.error, reply)

    async def get_coordinate(self, seq: int, body: dict[str, Any]) -> None:
        """The node's coordinate; for an unknown node (or none kept), Serf's zero one."""
        coord = self.server.backend.coordinate(body["Node"])
        if coord is None:
            zero = sorted_map(Adjustment=0.0, Error=0.0, Height=0.0, Vec=None)
            await self.reply(seq, body={"Coord": zero, "Ok": False})
        else:
            await self.reply(seq, body={"Coord": dict(coord), "Ok": True})

    async def explain(self, seq: int, body: dict[str, Any]) -> None:
        """Ours: the agent's explanation of a member (always with a body, as Serf's replies)."""
        try:
            data = self.server.backend.explain(body["Name"])
        except BackendError as exc:
            await self.reply(seq, str(exc), {})
            return
        if data is None:
            await self.reply(seq, UNKNOWN_MEMBER.format(body["Name"]), {})
        else:
            await self.reply(seq, body=data)


_C = _Connection
HANDLERS: Final[Mapping[Command, _Handler]] = {
    Command.HANDSHAKE: _C.handshake,
    Command.AUTH: _C.auth,
    Command.EVENT: _C.event,
    Command.FORCE_LEAVE: _C.force_leave,
    Command.JOIN: _C.join,
    Command.MEMBERS: _C.members,
    Command.MEMBERS_FILTERED: _C.members_filtered,
    Command.TAGS: _C.tags,
    Command.STREAM: _C.stream,
    Command.MONITOR: _C.monitor,
    Command.STOP: _C.stop,
    Command.LEAVE: _C.leave,
    Command.QUERY: _C.query,
    Command.RESPOND: _C.respond,
    Command.INSTALL_KEY: _C.keys,
    Command.USE_KEY: _C.keys,
    Command.REMOVE_KEY: _C.keys,
    Command.LIST_KEYS: _C.keys,
    Command.STATS: _C.stats,
    Command.GET_COORDINATE: _C.get_coordinate,
    Command.EXPLAIN: _C.explain,
}
"""What each command does; every `Command` has an entry (checked by the tests)."""


_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False


def _anchored(pattern: str) -> Any:
    return re2.compile("^" + pattern + "$", _RE2_OPTIONS)


def user_record(name: str, payload: bytes | None, ltime: int, coalesce: bool) -> StreamRecord:
    """The stream record of a user event (a nil payload stays nil)."""
    body = sorted_map(Coalesce=coalesce, Event="user", LTime=ltime, Name=name, Payload=payload)
    return StreamRecord(EventKind.USER, name, body)
