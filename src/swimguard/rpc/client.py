"""`Client`: an asyncio client of Serf's agent RPC (a serf agent's or a swimguard agent's).

    async with Client("127.0.0.1", 7373) as serf:
        for m in await serf.members():
            print(m.name, m.status, m.tags)
        await serf.event("deploy", b"v2")
        async with serf.stream("member-join,user") as events:
            async for event in events:
                ...

Replies are matched to requests by `Seq`, so several calls and streams can share one
connection; stream and monitor records wait in a bounded queue per subscription (what a
slow reader misses is counted in `lost`, as the agent would drop it too).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import ipaddress
import itertools
from collections.abc import AsyncIterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Final

from swimguard.rpc.codec import FrameReader, ProtocolViolation, pack
from swimguard.serf.coordinate import Coordinate

__all__ = ["Client", "KeyReport", "MemberInfo", "QueryAnswer", "RpcClientError", "StreamEvent"]

RECORD_QUEUE: Final = 1024
_HEADER_ONLY_ERRORS: Final = frozenset(
    {"Handshake required", "Authentication required", "Unsupported command"}
)
_DEFAULT_MAX_OBJECT: Final = 64 * 1024 * 1024  # a members reply of a large cluster


class RpcClientError(Exception):
    """The agent answered with an error (its text), or the connection failed."""


@dataclasses.dataclass(frozen=True, slots=True)
class MemberInfo:
    """One member as an agent's `members` reports it."""

    name: str
    addr: str
    port: int
    status: str
    tags: Mapping[str, str]
    protocol: tuple[int, int, int]
    """memberlist protocol (min, max, current)."""
    delegate: tuple[int, int, int]
    """Serf protocol (min, max, current): what `serf members -detailed` calls the protocol."""

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any]) -> MemberInfo:
        addr_bytes = raw.get("Addr") or b""
        try:
            addr = str(ipaddress.ip_address(bytes(addr_bytes)))
        except ValueError:
            addr = ""
        if addr.startswith("::ffff:"):
            addr = addr[len("::ffff:"):]
        return cls(
            name=str(raw.get("Name", "")),
            addr=addr,
            port=int(raw.get("Port", 0)),
            status=str(raw.get("Status", "")),
            tags=dict(raw.get("Tags") or {}),
            protocol=(
                int(raw.get("ProtocolMin", 0)),
                int(raw.get("ProtocolMax", 0)),
                int(raw.get("ProtocolCur", 0)),
            ),
            delegate=(
                int(raw.get("DelegateMin", 0)),
                int(raw.get("DelegateMax", 0)),
                int(raw.get("DelegateCur", 0)),
            ),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class StreamEvent:
    """One `stream` record: a member event (`members` set) or a user event / query."""

    event: str
    members: tuple[MemberInfo, ...] = ()
    name: str = ""
    payload: bytes | None = None
    ltime: int = 0
    coalesce: bool = False
    id: int = 0
    """A query's id for `respond` (on this connection only)."""

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any]) -> StreamEvent:
        payload = raw.get("Payload")
        return cls(
            event=str(raw.get("Event", "")),
            members=tuple(MemberInfo.from_wire(m) for m in raw.get("Members") or ()),
            name=str(raw.get("Name", "")),
            payload=bytes(payload) if payload is not None else None,
            ltime=int(raw.get("LTime", 0)),
            coalesce=bool(raw.get("Coalesce", False)),
            id=int(raw.get("ID", 0)),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class QueryAnswer:
    """An `ack` (payload None) or a `response` to a query we sent."""

    type: str
    from_: str
    payload: bytes | None


@dataclasses.dataclass(frozen=True, slots=True)
class KeyReport:
    """What the cluster answered to a key command (Serf's KeyResponse), error included.

    Serf sends the per-node messages even when the command failed, and `serf keys` prints
    them, so a failure is a report with `error` set rather than an exception.
    """

    error: str
    keys: Mapping[str, int]
    """list-keys only: each key and how many members hold it."""
    messages: Mapping[str, str]
    num_nodes: int
    num_resp: int
    num_err: int

    @classmethod
    def from_wire(cls, error: str, raw: Mapping[str, Any] | None) -> KeyReport:
        raw = raw or {}
        keys = raw.get("Keys") if isinstance(raw.get("Keys"), dict) else {}
        messages = raw.get("Messages") if isinstance(raw.get("Messages"), dict) else {}
        return cls(
            error=error,
            keys={str(k): v for k, v in (keys or {}).items() if _is_int(v)},
            messages={str(k): str(v) for k, v in (messages or {}).items()},
            num_nodes=_int(raw.get("NumNodes")),
            num_resp=_int(raw.get("NumResp")),
            num_err=_int(raw.get("NumErr")),
        )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _coordinate(raw: object) -> Coordinate | None:
    """A `get-coordinate` Coord map, or None when it is not one a distance can use."""
    if not isinstance(raw, dict):
        return None
    vec = raw.get("Vec")
    parts = (raw.get("Error"), raw.get("Adjustment"), raw.get("Height"))
    numbers = (int, float)
    if not isinstance(vec, list) or not all(isinstance(x, numbers) for x in (*vec, *parts)):
        return None
    error, adjustment, height = (float(x) for x in parts)  # type: ignore[arg-type]
    coord = Coordinate(tuple(float(x) for x in vec), error, adjustment, height)
    return coord if coord.is_finite() else None


class _Subscription:
    """Records for one stream/monitor Seq, bounded."""

    def __init__(self) -> None:
        self.records: collections.deque[dict[str, Any]] = collections.deque()
        self.ready = asyncio.Event()
        self.lost = 0
        self.closed = False

    def put(self, record: dict[str, Any]) -> None:
        if len(self.records) >= RECORD_QUEUE:
            self.lost += 1
            return
        self.records.append(record)
        self.ready.set()

    def close(self) -> None:
        self.closed = True
        self.ready.set()

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            while self.records:
                yield self.records.popleft()
            if self.closed:
                return
            self.ready.clear()
            await self.ready.wait()


@dataclasses.dataclass
class _Pending:
    future: asyncio.Future[tuple[str, dict[str, Any] | None]]
    has_body: bool
    subscription: _Subscription | None = None


class Client:
    """A connection to an agent's RPC port: handshake (and `auth`) on entering."""

    def __init__(self, host: str = "127.0.0.1", port: int = 7373, *, auth: str = "") -> None:
        self.host = host
        self.port = port
        self._auth = auth
        self._seq = itertools.count()
        self._pending: dict[int, _Pending] = {}
        self._subscriptions: dict[int, _Subscription] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._failure: RpcClientError | None = None

    async def __aenter__(self) -> Client:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def connect(self) -> None:
        try:
            reader, self._writer = await asyncio.open_connection(self.host, self.port)
        except OSError as error:
            raise RpcClientError(
                f"cannot connect to {self.host}:{self.port}: {error.strerror or error}"
            ) from None
        self._reader_task = asyncio.create_task(self._read_loop(reader))
        try:
            await self._call("handshake", {"Version": 1})
            if self._auth:
                await self._call("auth", {"AuthKey": self._auth})
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await self._writer.wait_closed()
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task
        self._fail(RpcClientError("client closed"))

    # -- commands ---------------------------------------------------------------------

    async def members(
        self,
        *,
        name: str | None = None,
        status: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> list[MemberInfo]:
        """Every member, or those whose name/status/tags match the (anchored) regexps."""
        if name is None and status is None and tags is None:
            body = await self._call("members", body=None, has_body=True)
        else:
            filters = {"Name": name or "", "Status": status or "", "Tags": dict(tags or {})}
            body = await self._call("members-filtered", filters, has_body=True)
        return [MemberInfo.from_wire(m) for m in (body or {}).get("Members") or ()]

    async def join(self, addresses: Sequence[str], *, replay: bool = False) -> int:
        """Join through `addresses`; how many answered."""
        body = await self._call(
            "join", {"Existing": list(addresses), "Replay": replay}, has_body=True
        )
        return int((body or {}).get("Num", 0))

    async def leave(self) -> None:
        """Make the agent leave the cluster and shut down."""
        await self._call("leave")

    async def force_leave(self, node: str, *, prune: bool = False) -> None:
        await self._call("force-leave", {"Node": node, "Prune": prune})

    async def event(self, name: str, payload: bytes = b"", *, coalesce: bool = True) -> None:
        """Fire a user event."""
        await self._call("event", {"Name": name, "Payload": payload, "Coalesce": coalesce})

    async def tags(
        self, *, set: Mapping[str, str] | None = None, delete: Sequence[str] = ()
    ) -> None:
        """Change the agent's tags: add/replace `set`, remove `delete`."""
        await self._call("tags", {"Tags": dict(set or {}), "DeleteTags": list(delete)})

    async def query(
        self,
        name: str,
        payload: bytes | None = b"",
        *,
        filter_nodes: Sequence[str] = (),
        filter_tags: Mapping[str, str] | None = None,
        request_ack: bool = False,
        relay_factor: int = 0,
        timeout: float = 0.0,  # noqa: ASYNC109 - the query's own deadline, sent to the agent
    ) -> AsyncIterator[QueryAnswer]:
        """Send a query; yields its acks and responses until the agent says it is done.

        `payload=None` sends nil, which Serf tells apart from b"" (only a nil-payload
        `_serf_ping` is allowed through the RPC).
        """
        request = {
            "FilterNodes": list(filter_nodes) or None,
            "FilterTags": dict(filter_tags or {}),
            "RequestAck": request_ack,
            "RelayFactor": relay_factor,
            "Timeout": int(timeout * 1e9),
            "Name": name,
            "Payload": payload,
        }
        seq, sub = await self._subscribe("query", request)
        try:
            async for raw in sub:
                kind = str(raw.get("Type", ""))
                if kind == "done":
                    return
                data = raw.get("Payload")
                yield QueryAnswer(kind, str(raw.get("From", "")), bytes(data) if data else None)
        finally:
            self._subscriptions.pop(seq, None)  # a query cannot be stopped (Serf)

    async def respond(self, query_id: int, payload: bytes) -> None:
        """Answer a query this connection's stream delivered (`StreamEvent.id`)."""
        await self._call("respond", {"ID": query_id, "Payload": payload})

    async def install_key(self, key: str) -> KeyReport:
        """Install a base64 key on every member (`serf keys -install`)."""
        return await self._key_command("install-key", key)

    async def use_key(self, key: str) -> KeyReport:
        """Make an installed key the primary one on every member."""
        return await self._key_command("use-key", key)

    async def remove_key(self, key: str) -> KeyReport:
        return await self._key_command("remove-key", key)

    async def list_keys(self) -> KeyReport:
        """Each member's installed keys, counted per key."""
        return await self._key_command("list-keys", None)

    async def get_coordinate(self, node: str) -> Coordinate | None:
        """`node`'s network coordinate as the agent knows it, None if it has none."""
        body = await self._call("get-coordinate", {"Node": node}, has_body=True) or {}
        return _coordinate(body.get("Coord")) if body.get("Ok") is True else None

    async def _key_command(self, command: str, key: str | None) -> KeyReport:
        body = None if key is None else {"Key": key}
        seq = await self._send(command, body, has_body=True)
        error, reply = await self._wait_raw(seq)
        return KeyReport.from_wire(error, reply)

    async def stats(self) -> dict[str, dict[str, str]]:
        body = await self._call("stats", has_body=True)
        return {k: dict(v) for k, v in (body or {}).items() if isinstance(v, dict)}

    @contextlib.asynccontextmanager
    async def stream(self, event_filter: str = "*") -> AsyncIterator[AsyncIterator[StreamEvent]]:
        """Events matching `event_filter` (`member-join,user:deploy`, `*` ...) until exit."""
        seq, sub = await self._subscribe("stream", {"Type": event_filter})

        async def events() -> AsyncIterator[StreamEvent]:
            async for raw in sub:
                yield StreamEvent.from_wire(raw)

        try:
            yield events()
        finally:
            await self._unsubscribe(seq)

    @contextlib.asynccontextmanager
    async def monitor(self, level: str = "INFO") -> AsyncIterator[AsyncIterator[str]]:
        """The agent's log lines at `level` or above (recent ones first), until exit."""
        seq, sub = await self._subscribe("monitor", {"LogLevel": level})

        async def lines() -> AsyncIterator[str]:
            async for raw in sub:
                yield str(raw.get("Log", ""))

        try:
            yield lines()
        finally:
            await self._unsubscribe(seq)

    # -- plumbing ---------------------------------------------------------------------

    async def explain(self, name: str) -> dict[str, Any]:
        """Why member `name` is in its state (a swimguard agent's `explain`, not Serf's):
        `Explanation.to_dict()`. RpcClientError for an unknown member; a serf agent does
        not know the command and hangs up (RpcClientError too)."""
        return await self.request("explain", {"Name": name})

    async def request(self, command: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """Any command that answers with a body, untyped (RpcClientError on its error)."""
        return dict(await self._call(command, body, has_body=True) or {})

    async def _subscribe(self, command: str, body: dict[str, Any]) -> tuple[int, _Subscription]:
        sub = _Subscription()
        seq = await self._send(command, body, has_body=False, subscription=sub)
        await self._wait(seq)
        return seq, sub

    async def _unsubscribe(self, seq: int) -> None:
        sub = self._subscriptions.pop(seq, None)
        if sub is not None:
            sub.close()
        if self._failure is None:
            with contextlib.suppress(RpcClientError):
                await self._call("stop", {"Stop": seq})

    async def _call(
        self, command: str, body: dict[str, Any] | None = None, *, has_body: bool = False
    ) -> dict[str, Any] | None:
        seq = await self._send(command, body, has_body=has_body)
        return await self._wait(seq)

    async def _send(
        self,
        command: str,
        body: dict[str, Any] | None,
        *,
        has_body: bool,
        subscription: _Subscription | None = None,
    ) -> int:
        if self._failure is not None:
            raise self._failure
        if self._writer is None:
            raise RpcClientError("not connected (use `async with Client(...)`)")
        seq = next(self._seq)
        future: asyncio.Future[tuple[str, dict[str, Any] | None]] = (
            asyncio.get_running_loop().create_future()
        )
        self._pending[seq] = _Pending(future, has_body, subscription)
        data = pack({"Command": command, "Seq": seq})
        if body is not None:
            data += pack(body)
        self._writer.write(data)
        await self._writer.drain()
        return seq

    async def _wait(self, seq: int) -> dict[str, Any] | None:
        error, body = await self._wait_raw(seq)
        if error:
            raise RpcClientError(error)
        return body

    async def _wait_raw(self, seq: int) -> tuple[str, dict[str, Any] | None]:
        """The reply's error text and body, without raising on the error."""
        pending = self._pending[seq]
        try:
            return await pending.future
        finally:
            self._pending.pop(seq, None)

    async def _read_loop(self, reader: asyncio.StreamReader) -> None:
        frames = FrameReader(_DEFAULT_MAX_OBJECT)
        objects: collections.deque[object] = collections.deque()

        async def next_object() -> object:
            while not objects:
                data = await reader.read(65536)
                if not data:
                    raise RpcClientError("connection closed by the agent")
                frames.feed(data)
                objects.extend(frames.objects())
            return objects.popleft()

        try:
            while True:
                header = await next_object()
                if not isinstance(header, dict):
                    raise RpcClientError("agent sent a reply that is not a map")
                seq = header.get("Seq")
                error = str(header.get("Error") or "")
                pending = self._pending.get(seq) if isinstance(seq, int) else None
                if pending is not None and not pending.future.done():
                    # Serf sends a command's body even with an error, except for the
                    # errors of the connection's state, which it answers before decoding.
                    with_body = pending.has_body and error not in _HEADER_ONLY_ERRORS
                    body = await next_object() if with_body else None
                    if pending.subscription is not None and not error:
                        self._subscriptions[seq] = pending.subscription  # type: ignore[index]
                    pending.future.set_result((error, body if isinstance(body, dict) else None))
                    continue
                if error:
                    # Not a record (those carry no error): Serf's second `Authentication
                    # required` for a request body it took for a header.
                    continue
                sub = self._subscriptions.get(seq) if isinstance(seq, int) else None
                record = await next_object()
                if sub is not None and isinstance(record, dict):
                    sub.put(record)
        except (RpcClientError, ProtocolViolation, ConnectionError, OSError) as exc:
            self._fail(exc if isinstance(exc, RpcClientError) else RpcClientError(str(exc)))

    def _fail(self, failure: RpcClientError) -> None:
        if self._failure is None:
            self._failure = failure
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(failure)
        for sub in self._subscriptions.values():
            sub.close()
        self._subscriptions.clear()
