"""The RPC port's codec: back-to-back new-spec msgpack objects, and typed request bodies.

Serf's agent RPC has no length prefix: a connection carries msgpack maps one after the
other, each request a header map optionally followed by a body map. Unlike the gossip
wire (old-spec msgpack), strings are `str` and byte slices `bin` here, so this module has
its own packer settings and shares none with `swimguard.wire`.

Decoding mirrors what Serf's agent tolerates (missing keys are zero values, unknown keys
are ignored, a str where bytes are expected is taken as its UTF-8 bytes, nil for any
slice or map) and what makes it hang up (any other type mismatch, a bin where a string is
expected, a negative `Seq`): `ProtocolViolation`, after which the server closes the
connection without replying.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from typing import Any, Final

import msgpack

__all__ = [
    "MAX_REQUEST_BYTES",
    "MAX_REQUEST_ITEMS",
    "NEED_MORE",
    "FieldType",
    "FrameReader",
    "ProtocolViolation",
    "decode_body",
    "pack",
    "sorted_map",
]

MAX_REQUEST_BYTES: Final = 1024 * 1024
"""Largest request object (header or body) the server buffers; Serf's own bodies are tiny
(a user event is at most 9 KiB), so a bigger one is a broken or hostile client."""

_U64_MAX: Final = (1 << 64) - 1
_I32_MIN: Final = -(1 << 31)
_I32_MAX: Final = (1 << 31) - 1


class ProtocolViolation(Exception):
    """Bytes Serf's agent would refuse to decode: the connection is closed, no reply."""


class FieldType(enum.Enum):
    """Go types of request fields, as the agent's decoder checks them."""

    STR = enum.auto()
    BYTES = enum.auto()
    BOOL = enum.auto()
    UINT = enum.auto()
    INT = enum.auto()
    STR_MAP = enum.auto()
    STR_LIST = enum.auto()


_ZERO: Final[Mapping[FieldType, Any]] = {
    FieldType.STR: "",
    FieldType.BYTES: None,
    FieldType.BOOL: False,
    FieldType.UINT: 0,
    FieldType.INT: 0,
    FieldType.STR_MAP: None,
    FieldType.STR_LIST: None,
}


def pack(obj: object) -> bytes:
    """One new-spec msgpack object (str as str, bytes as bin), as Serf's agent writes it."""
    data: bytes = msgpack.packb(obj, use_bin_type=True)
    return data


def sorted_map(**fields: Any) -> dict[str, Any]:
    """A map with its keys in bytewise order: Go writes struct fields sorted that way."""
    return {key: fields[key] for key in sorted(fields, key=str.encode)}


MAX_REQUEST_ITEMS: Final = 8192
"""Maps, arrays and elements of them one request object may hold. Serf's requests are a
map with at most one list or map of strings in it (`join` names at most 256 addresses);
a megabyte of empty maps, or of two-letter strings in a list, would unpack into tens of
megabytes of Python objects, so a request with more is refused while it is unpacked."""


class NeedMore(enum.Enum):
    """`FrameReader.next_object`'s answer when no complete object is buffered yet."""

    TOKEN = enum.auto()


NEED_MORE: Final = NeedMore.TOKEN


class _ItemBudget:
    """Counts the maps, arrays and elements of the object being unpacked (msgpack calls it
    as each map/array is completed, also across feeds of one object)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.items = 0

    def __call__(self, container: Any) -> Any:
        self.items += 1 + len(container) * (2 if isinstance(container, dict) else 1)
        if self.items > self.limit:
            raise ProtocolViolation(
                f"request holds more than {self.limit} maps, arrays and elements"
            )
        return container


class FrameReader:
    """Splits the bytes a client sent into msgpack objects, each at most `max_object` bytes
    and (if `max_items` is set) at most that many maps, arrays and elements of them.

    `feed` raises `ProtocolViolation` when one unfinished object would exceed the byte
    limit (the buffer never grows past it); `next_object`/`objects` raise it on bytes that
    are not msgpack and on an object with too many items: a map or array announcing more
    is refused before it is built, and nesting is refused as soon as the count is passed.
    """

    def __init__(
        self, max_object: int = MAX_REQUEST_BYTES, *, max_items: int | None = None
    ) -> None:
        self._max = max_object
        self._budget: _ItemBudget | None = None
        limits: dict[str, Any] = {}
        if max_items is not None:
            # The hook is its own object, not a bound method of ours: no reference cycle,
            # so a closed connection's reader is freed at once, not at the next GC pass.
            self._budget = _ItemBudget(max_items)
            limits = {
                "object_hook": self._budget,
                "list_hook": self._budget,
                "max_array_len": max_items,
                "max_map_len": max_items,
            }
        self._unpacker = msgpack.Unpacker(
            raw=False,
            strict_map_key=False,  # a non-string key is refused by `decode_body` with the rest
            max_buffer_size=max_object,
            # The buffer grows as bytes come (to max_object); msgpack would otherwise
            # allocate up to 1 MiB per reader at once.
            read_size=min(max_object, 4096),
            unicode_errors="strict",
            **limits,
        )

    def feed(self, data: bytes) -> None:
        try:
            self._unpacker.feed(data)
        except msgpack.BufferFull:
            raise ProtocolViolation(f"request larger than {self._max} bytes") from None

    def next_object(self) -> object:
        """The next complete object, or `NEED_MORE` (feed more bytes, then ask again)."""
        try:
            obj = self._unpacker.unpack()
        except msgpack.OutOfData:
            return NEED_MORE
        except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError,
                TypeError, UnicodeDecodeError) as exc:
            raise ProtocolViolation(f"undecodable request: {exc}") from None
        if self._budget is not None:
            self._budget.items = 0
        return obj

    def objects(self) -> Iterator[object]:
        """The complete objects fed so far, in order."""
        while (obj := self.next_object()) is not NEED_MORE:
            yield obj


def _field(name: str, kind: FieldType, value: object) -> object:
    """`value` as Go would decode it into a field of type `kind`, else ProtocolViolation."""
    if value is None:
        return _ZERO[kind]
    ok: bool
    if kind is FieldType.STR:
        ok = isinstance(value, str)
    elif kind is FieldType.BYTES:
        if isinstance(value, str):
            value = value.encode()
        ok = isinstance(value, bytes)
    elif kind is FieldType.BOOL:
        ok = isinstance(value, bool)
    elif kind is FieldType.UINT:
        ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _U64_MAX
    elif kind is FieldType.INT:
        ok = isinstance(value, int) and not isinstance(value, bool) and (
            _I32_MIN <= value <= _I32_MAX
        )
    elif kind is FieldType.STR_MAP:
        ok = isinstance(value, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        )
    else:
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    if not ok:
        raise ProtocolViolation(f"{name}: expected {kind.name.lower()}, got {type(value).__name__}")
    return value


def decode_body(obj: object, schema: Mapping[str, FieldType]) -> dict[str, Any]:
    """A request map checked against `schema`: every schema key present (zero if absent)."""
    if not isinstance(obj, dict):
        raise ProtocolViolation(f"expected a map, got {type(obj).__name__}")
    for key in obj:
        if not isinstance(key, str):
            raise ProtocolViolation(f"map key of type {type(key).__name__}")
    return {
        name: _field(name, kind, obj.get(name)) for name, kind in schema.items()
    }
