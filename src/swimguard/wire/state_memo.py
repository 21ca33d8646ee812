"""Push/pull member states: their codec, and a bounded memo of recent encodings.

A push/pull carries every member's state, and from one anti-entropy round to the
next almost all of them are unchanged: the same name, address, incarnation, state,
meta and version bytes. Encoding or decoding such a state again is pure waste, so
`StateMemo` remembers, in both directions, the wire bytes of states it has seen:

- encoding: the state's field values -> its msgpack map (byte-identical to
  `encode_body`, i.e. go-msgpack's old spec);
- decoding: the exact bytes of one map -> the `PushNodeState` they decode to.

Both are deterministic functions of their key, so a hit returns exactly what the
full codec would: decoded values, and the fact that decoding succeeded (only
states that decoded are remembered; anything else takes the full path and fails
there, with the same reason). Memory is bounded: per direction at most `capacity`
entries and `max_bytes` of wire bytes, no entry larger than `max_entry_bytes`,
and a full table is dropped whole (so a peer inventing states makes us miss,
never grow). With the defaults a 10,000-member cluster fits (~1 MB of wire
bytes per direction, ~4 MB with the decoded objects); the worst a peer can pin
is about 2 MiB of bytes plus 16,384 small states (~7 MB).

Field values must have their declared types: an int field holding a bool or a
float compares equal to the int, so it could be served the int's bytes, and a
bytearray kept as part of a key could change after.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any, Final

import msgpack

from swimguard.wire.errors import BodyError
from swimguard.wire.messages import MAX_ARRAY_LEN, MAX_MAP_LEN, PushNodeState, decoder_for

__all__ = [
    "SHARED_MEMO",
    "STATE_KEYS",
    "STATE_ROW",
    "StateMemo",
    "decode_state",
    "encode_row",
    "encode_state",
    "state_from_map",
    "state_row",
]

# Every memberlist peer encodes all seven push/pull state keys (Go's codec has no
# omitempty); a map without these is not a member state, whatever else it holds.
STATE_KEYS: Final = frozenset((b"Name", b"Addr", b"Port", b"Incarnation", b"State"))
DEFAULT_CAPACITY: Final = 1 << 14
DEFAULT_MAX_BYTES: Final = 2 << 20
# The largest state memberlist sends is ~600 bytes (512 bytes of meta); anything
# bigger is decoded every time rather than pinned in the table.
MAX_ENTRY_BYTES: Final = 1024

_decode_map = decoder_for(PushNodeState)
# surrogateescape: names decoded from non-UTF-8 bytes re-encode to the same bytes.
_PACK: Final = msgpack.Packer(
    use_bin_type=False, autoreset=True, unicode_errors="surrogateescape"
).pack


STATE_ROW: Final = tuple(attr for _key, attr, _kind, _omit in PushNodeState.FIELDS)
"""A state's *row*: its field values in wire (FIELDS) order, which is all its
encoding depends on. Producers that hold the values elsewhere (the member table)
can hand rows to `StateMemo.encode_rows` without building PushNodeState objects."""
# The row of a state, in one C call.
state_row: Final = operator.attrgetter(*STATE_ROW)
_WIRE_KEYS: Final = tuple(key for key, _attr, _kind, _omit in PushNodeState.FIELDS)


def _build_state_encoder() -> Callable[[PushNodeState], bytes]:
    """One dict display and one pack per state, keys in Go's order (from FIELDS).

    No field of a push/pull state is omitempty (Go writes all seven), which is
    what lets the whole map be one literal.
    """
    fields = PushNodeState.FIELDS
    if any(omitempty for _key, _attr, _kind, omitempty in fields):
        raise TypeError("PushNodeState has an omitempty field; the literal encoder needs none")
    items = ", ".join(f"{key!r}: s.{attr}" for key, attr, _kind, _omit in fields)
    env: dict[str, Any] = {"_pack": _PACK}
    exec(f"def encode(s):\n    return _pack({{{items}}})", env)  # built from FIELDS only
    encode: Callable[[PushNodeState], bytes] = env["encode"]
    return encode


encode_state: Final = _build_state_encoder()
encode_state.__doc__ = "msgpack map of one member state, byte-identical to `encode_body`."


def _build_row_encoder() -> Callable[[tuple[object, ...]], bytes]:
    names = [f"v{i}" for i in range(len(_WIRE_KEYS))]
    items = ", ".join(f"{key!r}: {name}" for key, name in zip(_WIRE_KEYS, names, strict=True))
    env: dict[str, Any] = {"_pack": _PACK}
    exec(f"def encode(row):\n    {', '.join(names)} = row\n    return _pack({{{items}}})", env)
    encode: Callable[[tuple[object, ...]], bytes] = env["encode"]
    return encode


encode_row: Final = _build_row_encoder()
encode_row.__doc__ = "`encode_state` of the state whose row (`STATE_ROW` order) is `row`."


def _build_memo_encoder() -> Callable[..., bytes]:
    """`StateMemo.encode`'s loop, generated from FIELDS.

    A state's field values (one `attrgetter` call) decide its bytes. The table is
    keyed by member name, holding (values, bytes) of the last state encoded for
    it: a str key hashes once per string (a tuple would hash all seven values at
    every lookup and every resize), a changed member replaces its own entry, and a
    hit costs one tuple comparison, mostly of identical objects.
    """
    fields = PushNodeState.FIELDS
    name_at = [attr for _key, attr, _kind, _omit in fields].index("name")
    names = [f"v{i}" for i in range(len(fields))]
    items = ", ".join(f"{key!r}: {name}" for (key, *_rest), name in zip(fields, names, strict=True))
    source = f"""
def encode_many(rows, memo):
    table = memo._encoded
    get = table.get
    size = memo._encoded_size
    capacity, max_bytes, max_entry = memo.capacity, memo.max_bytes, memo.max_entry_bytes
    parts = []
    append = parts.append
    try:
        for key in rows:
            name = key[{name_at}]
            known = get(name)
            if known is not None and known[0] == key:
                append(known[1])
                continue
            {", ".join(names)} = key
            data = _pack({{{items}}})
            n = len(data)
            if n <= max_entry:
                if known is not None:  # the member changed: its entry is replaced
                    size -= len(known[1])
                elif len(table) >= capacity or size + n > max_bytes:
                    table.clear()
                    size = 0
                table[name] = (key, data)
                size += n
            append(data)
    finally:
        memo._encoded_size = size
    return b"".join(parts)
"""
    env: dict[str, Any] = {"_pack": _PACK}
    exec(source, env)  # built from FIELDS only
    encode_many: Callable[..., bytes] = env["encode_many"]
    return encode_many


_encode_many: Final = _build_memo_encoder()


def decode_state(data: bytes) -> PushNodeState:
    """Decode the bytes of exactly one msgpack map into a `PushNodeState`.

    `BodyError` for bad msgpack, a limit exceeded, an entry that is not a member
    state (lacks `STATE_KEYS`) or a field of the wrong type or range.
    """
    try:
        raw = msgpack.unpackb(
            data,
            raw=True,
            strict_map_key=False,
            max_map_len=MAX_MAP_LEN,
            max_array_len=MAX_ARRAY_LEN,
        )
    except (msgpack.ExtraData, ValueError, TypeError) as exc:  # FormatError is a ValueError
        raise BodyError(f"bad msgpack: {exc}") from None
    except RecursionError:
        raise BodyError("bad msgpack: nested too deeply") from None
    return state_from_map(raw)


def state_from_map(raw: object) -> PushNodeState:
    """A `PushNodeState` from one unpacked (`raw=True`) msgpack object; `BodyError` if
    it is not a map with `STATE_KEYS` or a field has the wrong type or range."""
    if type(raw) is not dict or not raw.keys() >= STATE_KEYS:
        raise BodyError("not a member state")
    return _decode_map(raw)


class StateMemo:
    """Bounded two-way memo of member states and their wire bytes (see module doc)."""

    def __init__(
        self,
        capacity: int = DEFAULT_CAPACITY,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_entry_bytes: int = MAX_ENTRY_BYTES,
    ) -> None:
        """Per direction: at most `capacity` entries and `max_bytes` of wire bytes,
        none over `max_entry_bytes`."""
        if min(capacity, max_bytes, max_entry_bytes) < 1:
            raise ValueError("capacity, max_bytes and max_entry_bytes must be >= 1")
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.max_entry_bytes = max_entry_bytes
        # member name -> (field values, wire bytes) of the last state encoded for it
        self._encoded: dict[str, tuple[tuple[object, ...], bytes]] = {}
        self._encoded_size = 0
        self._decoded: dict[bytes, PushNodeState] = {}
        self._decoded_size = 0

    def __len__(self) -> int:
        """Entries held, both directions."""
        return len(self._encoded) + len(self._decoded)

    @property
    def size(self) -> int:
        """Wire bytes held, both directions."""
        return self._encoded_size + self._decoded_size

    def clear(self) -> None:
        """Forget everything."""
        self._encoded.clear()
        self._encoded_size = 0
        self._decoded.clear()
        self._decoded_size = 0

    def encode(self, states: Sequence[PushNodeState]) -> bytes:
        """The concatenated msgpack maps of `states`, byte-identical to `encode_body` each."""
        try:
            return _encode_many(map(state_row, states), self)
        except TypeError:  # e.g. a name that is not hashable: encode without the memo
            return b"".join(map(encode_state, states))

    def encode_rows(self, rows: Sequence[tuple[object, ...]]) -> bytes:
        """`encode` for states given as rows (`STATE_ROW` order)."""
        try:
            return _encode_many(rows, self)
        except TypeError:  # e.g. a name that is not hashable: encode without the memo
            return b"".join(map(encode_row, rows))

    def decode(self, data: bytes) -> PushNodeState:
        """`decode_state(data)`, from the memo when these exact bytes decoded before."""
        state = self._decoded.get(data)
        if state is None:
            state = decode_state(data)  # raises before anything is remembered
            self.remember(data, state)
        return state

    def remember(self, data: bytes, state: PushNodeState) -> None:
        """Record that `data` (one msgpack map, exactly) decodes to `state`.

        The caller vouches for it: `state` is what `decode_state(data)` returned.
        """
        size = len(data)
        if size <= self.max_entry_bytes and data not in self._decoded:
            decoded = self._decoded
            if len(decoded) >= self.capacity or self._decoded_size + size > self.max_bytes:
                decoded.clear()
                self._decoded_size = 0
            decoded[data] = state
            self._decoded_size += size

    @property
    def lookup(self) -> Callable[[bytes], PushNodeState | None]:
        """The raw `dict.get` of the decode direction, for the stream decoder's loop."""
        return self._decoded.get


SHARED_MEMO: Final = StateMemo()
"""The process-wide memo the codec uses by default: every node of a process (the
simulator runs thousands) sees the same cluster, so one table serves them all."""
