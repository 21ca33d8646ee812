"""Serf's own messages, carried inside memberlist user messages and push/pull state.

Every Serf message is one Serf type byte followed by one msgpack map written the
way go-msgpack 0.5.5 writes Go structs: keys are the Go field names in sorted
byte order, strings and byte slices both as old-spec raw (`use_bin_type=False`),
integers in their smallest form. Decoding is lenient where Go is (missing keys
take zero values, unknown keys are skipped, nil for any slice) and strict about
types, so bad input raises `SerfDecodeError` and nothing else.
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any, Final

import msgpack

from swimguard.wire.errors import DecodeError

__all__ = [
    "EVENT_BUFFER",
    "ConflictMember",
    "Join",
    "Leave",
    "PushPull",
    "Query",
    "QueryFlag",
    "QueryResponse",
    "Relay",
    "SerfDecodeError",
    "SerfMemberStatus",
    "SerfMessage",
    "SerfMessageType",
    "UserEvent",
    "UserEventEntry",
    "UserEvents",
    "decode_conflict_response",
    "decode_message",
    "encode_conflict_response",
    "encode_message",
]

# Size of Serf's user-event and query dedup rings; push/pull carries the whole event ring.
EVENT_BUFFER: Final = 512
U8: Final = 0xFF
U16: Final = 0xFFFF
U32: Final = 0xFFFF_FFFF
U64: Final = (1 << 64) - 1
I64_MIN: Final = -(1 << 63)
I64_MAX: Final = (1 << 63) - 1


class SerfDecodeError(DecodeError):
    """A Serf message (inside a memberlist user message or push/pull state) is malformed."""

    reason = "serf"


class SerfMessageType(enum.IntEnum):
    """Serf's type byte; a namespace separate from memberlist's. Wire protocol: append only."""

    LEAVE = 0
    JOIN = 1
    PUSH_PULL = 2
    USER_EVENT = 3
    QUERY = 4
    QUERY_RESPONSE = 5
    CONFLICT_RESPONSE = 6
    KEY_REQUEST = 7
    KEY_RESPONSE = 8
    RELAY = 9


class QueryFlag(enum.IntFlag):
    """Bits of `Query.flags` / `QueryResponse.flags`."""

    ACK = 1
    NO_BROADCAST = 2


class SerfMemberStatus(enum.IntEnum):
    """Serf's `MemberStatus`, as a conflict response carries it."""

    NONE = 0
    ALIVE = 1
    LEAVING = 2
    LEFT = 3
    FAILED = 4


@dataclasses.dataclass(frozen=True, slots=True)
class ConflictMember:
    """Serf's `Member`: one member's view of the contested name, in a conflict response."""

    name: str
    addr: bytes
    port: int
    tags: Mapping[str, str] = dataclasses.field(default_factory=dict)
    status: int = SerfMemberStatus.NONE
    protocol: tuple[int, int, int] = (0, 0, 0)  # min, max, cur
    delegate: tuple[int, int, int] = (0, 0, 0)  # min, max, cur


@dataclasses.dataclass(frozen=True, slots=True)
class Join:
    """`messageJoin`: `node` (re)asserts membership at member-clock time `ltime`."""

    ltime: int
    node: str


@dataclasses.dataclass(frozen=True, slots=True)
class Leave:
    """`messageLeave`: `node` intends to leave at `ltime`; `prune` erases it at once."""

    ltime: int
    node: str
    prune: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class UserEvent:
    """`messageUserEvent`: a named user event; `cc` = may be coalesced."""

    ltime: int
    name: str
    payload: bytes = b""
    cc: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class Query:
    """`messageQuery`: replies go to `addr:port` (`source_node`), not to the UDP source."""

    ltime: int
    id: int
    name: str
    addr: bytes = b""
    port: int = 0
    source_node: str = ""
    payload: bytes = b""
    filters: tuple[bytes, ...] | None = None
    flags: int = 0
    relay_factor: int = 0
    timeout_ns: int = 0

    @property
    def reply_to(self) -> tuple[str, int] | None:
        """(ip text, port) the originator listens on, or None if `addr` is not an IP."""
        try:
            host = str(ipaddress.ip_address(self.addr))
        except ValueError:
            return None
        return host, self.port


@dataclasses.dataclass(frozen=True, slots=True)
class QueryResponse:
    """`messageQueryResponse`: an ack (flags & ACK, no payload) or a response."""

    ltime: int
    id: int
    from_: str
    flags: int = 0
    payload: bytes | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class UserEventEntry:
    """`userEvent`: one event name + payload inside a push/pull ring slot."""

    name: str
    payload: bytes = b""


@dataclasses.dataclass(frozen=True, slots=True)
class UserEvents:
    """`userEvents`: all events seen at one event-clock time (one ring slot)."""

    ltime: int
    events: tuple[UserEventEntry, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class PushPull:
    """`messagePushPull`: Serf's anti-entropy state; `events` is the whole ring (None = empty)."""

    ltime: int
    status_ltimes: Mapping[str, int] = dataclasses.field(default_factory=dict)
    left_members: tuple[str, ...] = ()
    event_ltime: int = 0
    events: tuple[UserEvents | None, ...] = ()
    query_ltime: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class Relay:
    """`relayHeader` + nested message: forward `inner` (type byte + body) to dest."""

    dest_ip: bytes
    dest_port: int
    dest_name: str
    inner: bytes
    dest_zone: str = ""


SerfMessage = Join | Leave | UserEvent | Query | QueryResponse | PushPull | Relay

_TYPE_OF: Final[dict[type[Any], SerfMessageType]] = {
    Join: SerfMessageType.JOIN,
    Leave: SerfMessageType.LEAVE,
    UserEvent: SerfMessageType.USER_EVENT,
    Query: SerfMessageType.QUERY,
    QueryResponse: SerfMessageType.QUERY_RESPONSE,
    PushPull: SerfMessageType.PUSH_PULL,
    Relay: SerfMessageType.RELAY,
}


def _pack(obj: object) -> bytes:
    return msgpack.packb(obj, use_bin_type=False)


def _body(msg: SerfMessage) -> dict[str, Any]:
    """The map Go writes for `msg`, keys in Go's sorted order."""
    if isinstance(msg, Join):
        return {"LTime": msg.ltime, "Node": msg.node}
    if isinstance(msg, Leave):
        return {"LTime": msg.ltime, "Node": msg.node, "Prune": msg.prune}
    if isinstance(msg, UserEvent):
        return {"CC": msg.cc, "LTime": msg.ltime, "Name": msg.name, "Payload": msg.payload}
    if isinstance(msg, Query):
        return {
            "Addr": msg.addr,
            "Filters": None if msg.filters is None else list(msg.filters),
            "Flags": msg.flags,
            "ID": msg.id,
            "LTime": msg.ltime,
            "Name": msg.name,
            "Payload": msg.payload,
            "Port": msg.port,
            "RelayFactor": msg.relay_factor,
            "SourceNode": msg.source_node,
            "Timeout": msg.timeout_ns,
        }
    if isinstance(msg, QueryResponse):
        return {
            "Flags": msg.flags,
            "From": msg.from_,
            "ID": msg.id,
            "LTime": msg.ltime,
            "Payload": msg.payload,
        }
    if isinstance(msg, PushPull):
        return {
            "EventLTime": msg.event_ltime,
            "Events": [
                None
                if slot is None
                else {
                    "Events": [{"Name": e.name, "Payload": e.payload} for e in slot.events],
                    "LTime": slot.ltime,
                }
                for slot in msg.events
            ],
            "LTime": msg.ltime,
            "LeftMembers": list(msg.left_members),
            "QueryLTime": msg.query_ltime,
            "StatusLTimes": dict(msg.status_ltimes),
        }
    raise TypeError(f"not a Serf message: {type(msg).__name__}")


def encode_message(msg: SerfMessage) -> bytes:
    """Serf type byte + msgpack body, as Serf's `encodeMessage` writes it.

    For a `Relay`, the header map is followed by `inner` verbatim.
    """
    if isinstance(msg, Relay):
        header = {
            "DestAddr": {"IP": msg.dest_ip, "Port": msg.dest_port, "Zone": msg.dest_zone},
            "DestName": msg.dest_name,
        }
        return bytes((SerfMessageType.RELAY,)) + _pack(header) + msg.inner
    return bytes((_TYPE_OF[type(msg)],)) + _pack(_body(msg))


# --- decoding -------------------------------------------------------------------------------


def _field(raw: Mapping[Any, Any], key: str) -> object:
    return raw.get(key.encode())


def _str(raw: Mapping[Any, Any], key: str) -> str:
    value = _field(raw, key)
    if value is None:
        return ""
    if isinstance(value, bytes):
        # Go strings are arbitrary bytes; keep them round-trippable.
        return value.decode("utf-8", "surrogateescape")
    raise SerfDecodeError(f"{key}: expected a string, got {type(value).__name__}")


def _bytes(raw: Mapping[Any, Any], key: str, *, nil: bool = False) -> bytes | None:
    value = _field(raw, key)
    if value is None:
        return None if nil else b""
    if isinstance(value, bytes):
        return value
    raise SerfDecodeError(f"{key}: expected bytes, got {type(value).__name__}")


def _int(raw: Mapping[Any, Any], key: str, lo: int, hi: int) -> int:
    value = _field(raw, key)
    if value is None:
        return 0
    if type(value) is not int:
        raise SerfDecodeError(f"{key}: expected an integer, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise SerfDecodeError(f"{key}: {value} out of range")
    return value


def _bool(raw: Mapping[Any, Any], key: str) -> bool:
    value = _field(raw, key)
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if type(value) is int and value in (0, 1):
        return bool(value)
    raise SerfDecodeError(f"{key}: expected a bool, got {type(value).__name__}")


def _map(value: object, what: str) -> Mapping[Any, Any]:
    if not isinstance(value, Mapping):
        raise SerfDecodeError(f"{what}: expected a map, got {type(value).__name__}")
    return value


def _list(raw: Mapping[Any, Any], key: str) -> Sequence[Any]:
    value = _field(raw, key)
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise SerfDecodeError(f"{key}: expected an array, got {type(value).__name__}")
    return value


def _text(value: object, what: str) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    raise SerfDecodeError(f"{what}: expected a string, got {type(value).__name__}")


def _decode_user_events(value: object) -> UserEvents | None:
    if value is None:
        return None
    raw = _map(value, "Events[]")
    entries = []
    for item in _list(raw, "Events"):
        entry = _map(item, "Events[].Events[]")
        entries.append(UserEventEntry(_str(entry, "Name"), _bytes(entry, "Payload") or b""))
    return UserEvents(_int(raw, "LTime", 0, U64), tuple(entries))


def _decode_body(kind: SerfMessageType, raw: Mapping[Any, Any]) -> SerfMessage:
    if kind is SerfMessageType.JOIN:
        return Join(_int(raw, "LTime", 0, U64), _str(raw, "Node"))
    if kind is SerfMessageType.LEAVE:
        return Leave(_int(raw, "LTime", 0, U64), _str(raw, "Node"), _bool(raw, "Prune"))
    if kind is SerfMessageType.USER_EVENT:
        return UserEvent(
            _int(raw, "LTime", 0, U64),
            _str(raw, "Name"),
            _bytes(raw, "Payload") or b"",
            _bool(raw, "CC"),
        )
    if kind is SerfMessageType.QUERY:
        filters_raw = _field(raw, "Filters")
        filters: tuple[bytes, ...] | None = None
        if filters_raw is not None:
            items = _list(raw, "Filters")
            if not all(isinstance(f, bytes) for f in items):
                raise SerfDecodeError("Filters: expected an array of bytes")
            filters = tuple(items)
        return Query(
            ltime=_int(raw, "LTime", 0, U64),
            id=_int(raw, "ID", 0, U32),
            name=_str(raw, "Name"),
            addr=_bytes(raw, "Addr") or b"",
            port=_int(raw, "Port", 0, U16),
            source_node=_str(raw, "SourceNode"),
            payload=_bytes(raw, "Payload") or b"",
            filters=filters,
            flags=_int(raw, "Flags", 0, U32),
            relay_factor=_int(raw, "RelayFactor", 0, U8),
            timeout_ns=_int(raw, "Timeout", I64_MIN, I64_MAX),
        )
    if kind is SerfMessageType.QUERY_RESPONSE:
        return QueryResponse(
            ltime=_int(raw, "LTime", 0, U64),
            id=_int(raw, "ID", 0, U32),
            from_=_str(raw, "From"),
            flags=_int(raw, "Flags", 0, U32),
            payload=_bytes(raw, "Payload", nil=True),
        )
    if kind is SerfMessageType.PUSH_PULL:
        status_raw = _field(raw, "StatusLTimes")
        status: dict[str, int] = {}
        if status_raw is not None:
            for name, ltime in _map(status_raw, "StatusLTimes").items():
                if type(ltime) is not int or not 0 <= ltime <= U64:
                    raise SerfDecodeError("StatusLTimes: bad Lamport time")
                status[_text(name, "StatusLTimes key")] = ltime
        left = tuple(_text(n, "LeftMembers[]") for n in _list(raw, "LeftMembers"))
        events = tuple(_decode_user_events(e) for e in _list(raw, "Events"))
        return PushPull(
            ltime=_int(raw, "LTime", 0, U64),
            status_ltimes=status,
            left_members=left,
            event_ltime=_int(raw, "EventLTime", 0, U64),
            events=events,
            query_ltime=_int(raw, "QueryLTime", 0, U64),
        )
    raise SerfDecodeError(f"Serf message type {int(kind)} is not decoded here")


def _decode_relay(data: bytes) -> Relay:
    unpacker = msgpack.Unpacker(raw=True, strict_map_key=False, max_buffer_size=len(data) + 1)
    unpacker.feed(data)
    try:
        header = unpacker.unpack()
    except (msgpack.OutOfData, ValueError, TypeError) as exc:
        raise SerfDecodeError(f"relay header: {exc}") from None
    raw = _map(header, "relay header")
    dest = _map(_field(raw, "DestAddr") or {}, "DestAddr")
    inner = data[unpacker.tell() :]
    if not inner:
        raise SerfDecodeError("relay without an inner message")
    return Relay(
        dest_ip=_bytes(dest, "IP") or b"",
        dest_port=_int(dest, "Port", I64_MIN, I64_MAX),
        dest_name=_str(raw, "DestName"),
        inner=inner,
        dest_zone=_str(dest, "Zone"),
    )


def decode_message(data: bytes) -> SerfMessage:
    """Decode one Serf message (type byte + body).

    Raises `SerfDecodeError` for empty input, unknown or undecoded types
    (conflict/key messages only travel inside query payloads) and malformed bodies.
    Like Go, trailing bytes after the body are ignored.
    """
    if not data:
        raise SerfDecodeError("empty Serf message")
    try:
        kind = SerfMessageType(data[0])
    except ValueError:
        raise SerfDecodeError(f"unknown Serf message type {data[0]}") from None
    if kind is SerfMessageType.RELAY:
        return _decode_relay(data[1:])
    unpacker = msgpack.Unpacker(raw=True, strict_map_key=False, max_buffer_size=len(data) + 1)
    unpacker.feed(data[1:])
    try:
        raw = unpacker.unpack()
    except (msgpack.OutOfData, ValueError, TypeError) as exc:  # FormatError etc. are ValueErrors
        raise SerfDecodeError(f"{kind.name}: bad msgpack: {exc}") from None
    return _decode_body(kind, _map(raw, kind.name))


# --- the conflict response (type 6), which travels inside a query response's payload ---------


def encode_conflict_response(member: ConflictMember | None) -> bytes:
    """0x06 + Serf's `Member` (nil when the responder does not know the name)."""
    if member is None:
        return bytes((SerfMessageType.CONFLICT_RESPONSE,)) + _pack(None)
    body = {
        "Addr": member.addr,
        "DelegateCur": member.delegate[2],
        "DelegateMax": member.delegate[1],
        "DelegateMin": member.delegate[0],
        "Name": member.name,
        "Port": member.port,
        "ProtocolCur": member.protocol[2],
        "ProtocolMax": member.protocol[1],
        "ProtocolMin": member.protocol[0],
        "Status": int(member.status),
        "Tags": dict(member.tags),
    }
    return bytes((SerfMessageType.CONFLICT_RESPONSE,)) + _pack(body)


def decode_conflict_response(data: bytes) -> ConflictMember | None:
    """Decode 0x06 + `Member`; None for nil. `SerfDecodeError` for anything else."""
    if not data or data[0] != SerfMessageType.CONFLICT_RESPONSE:
        raise SerfDecodeError("not a conflict response")
    try:
        raw = msgpack.unpackb(data[1:], raw=True, strict_map_key=False)
    except (ValueError, TypeError) as exc:  # trailing bytes, bad msgpack
        raise SerfDecodeError(f"conflict response: bad msgpack: {exc}") from None
    if raw is None:
        return None
    body = _map(raw, "conflict response")
    tags_raw = _field(body, "Tags")
    tags = {
        _text(k, "Tags key"): _text(v, "Tags value")
        for k, v in (_map(tags_raw, "Tags") if tags_raw is not None else {}).items()
    }
    return ConflictMember(
        name=_str(body, "Name"),
        addr=_bytes(body, "Addr") or b"",
        port=_int(body, "Port", 0, U16),
        tags=tags,
        status=_int(body, "Status", I64_MIN, I64_MAX),
        protocol=_triple(body, "Protocol"),
        delegate=_triple(body, "Delegate"),
    )


def _triple(body: Mapping[Any, Any], prefix: str) -> tuple[int, int, int]:
    return (
        _int(body, f"{prefix}Min", 0, U8),
        _int(body, f"{prefix}Max", 0, U8),
        _int(body, f"{prefix}Cur", 0, U8),
    )
