"""Go-compatible msgpack bodies: encoding, and decoding with untrusted-input limits.

Each body class lists its wire fields as `(GoKey, attribute, kind, omitempty)`
in the order Go writes them (keys sorted by byte value), so encoding is one
dict build and one pack with `use_bin_type=False`: that reproduces go-msgpack
0.5.5 byte for byte (old-spec raw strings, minimal integers). Decoding reads
`raw=True` maps, skips unknown keys, leaves missing keys (and nil) at Go's zero
values and checks each value's type and range, so a hostile peer can only get
a `BodyError`. Signed and unsigned msgpack integer families are both accepted.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Final, Literal, TypeVar

import msgpack

from swimguard.wire.errors import BodyError

__all__ = [
    "MAX_ARRAY_LEN",
    "MAX_MAP_LEN",
    "Body",
    "Kind",
    "body_from_map",
    "body_map",
    "decode_body",
    "decoder_for",
    "encode_body",
    "maker_for",
    "unpack",
]

U8: Final = 0xFF
U16: Final = 0xFFFF
U32: Final = 0xFFFF_FFFF
# Go `int` on 64-bit platforms.
I64_MIN: Final = -(1 << 63)
I64_MAX: Final = (1 << 63) - 1

B = TypeVar("B", bound="Body")
Kind = Literal["str", "bytes", "nbytes", "bool", "u8", "u16", "u32", "int"]
_RANGES: Final[dict[str, tuple[int, int]]] = {
    "u8": (0, U8),
    "u16": (0, U16),
    "u32": (0, U32),
    "int": (I64_MIN, I64_MAX),
}


@dataclasses.dataclass(frozen=True, slots=True)
class Body:
    """Base of every msgpack-bodied message; subclasses set FIELDS."""

    # (Go key, attribute, kind, omitempty), in Go's sorted key order.
    FIELDS: ClassVar[tuple[tuple[str, str, Kind, bool], ...]] = ()


def body_map(msg: Body) -> dict[str, Any]:
    """The map Go would write for `msg`, keys in wire order.

    `omitempty` fields are left out when zero (0, "", b"", False or None), as
    go-msgpack does.
    """
    encoder = _ENCODERS.get(type(msg))
    if encoder is None:
        encoder = _ENCODERS[type(msg)] = _build_encoder(type(msg))
    return encoder(msg)


def encode_body(msg: Body) -> bytes:
    """msgpack body of `msg`, byte-identical to go-msgpack 0.5.5.

    No validation: the caller sends well-formed values (notably a 6-byte `Vsn`;
    1 to 5 bytes crash memberlist 0.2.2) and tests may craft malformed ones.
    """
    return _PACK(body_map(msg))


# Container limits for untrusted msgpack: msgpack preallocates a container
# from its declared length, so without them a few header bytes nested a few
# hundred deep could reserve gigabytes. Bodies are maps of <= 8 keys; 64 leaves
# room for unknown keys from newer peers, and 512 covers a bytes field sent as
# an array of ints (Meta is at most 512 bytes).
MAX_MAP_LEN: Final = 64
MAX_ARRAY_LEN: Final = 512

# surrogateescape: names decoded from non-UTF-8 bytes re-encode to the same bytes.
_PACK: Final = msgpack.Packer(
    use_bin_type=False, autoreset=True, unicode_errors="surrogateescape"
).pack


def unpack(data: bytes) -> object:
    """Decode exactly one msgpack object of `data` with swimguard's limits.

    Raises `BodyError` for anything that is not a single valid object.
    """
    try:
        return msgpack.unpackb(
            data,
            raw=True,
            strict_map_key=False,
            max_map_len=MAX_MAP_LEN,
            max_array_len=MAX_ARRAY_LEN,
        )
    except (msgpack.ExtraData, ValueError, TypeError) as exc:  # FormatError is a ValueError
        raise BodyError(f"bad msgpack: {exc}") from None
    except RecursionError:  # deeply nested containers
        raise BodyError("bad msgpack: nested too deeply") from None


def _convert(key: str, kind: Kind, value: object) -> object:
    if kind == "str":
        if value is None:
            return ""
        if isinstance(value, bytes):
            try:
                return value.decode("utf-8")
            except UnicodeDecodeError:
                # Go strings are bytes; keep them usable as a stable key.
                return value.decode("utf-8", "surrogateescape")
        raise BodyError(f"field {key}: expected a string, got {type(value).__name__}")
    if kind in ("bytes", "nbytes"):
        if value is None:
            return None if kind == "nbytes" else b""
        if isinstance(value, bytes):
            return value
        if isinstance(value, list) and all(type(v) is int and 0 <= v <= U8 for v in value):
            return bytes(value)  # go-msgpack accepts an array of small ints
        raise BodyError(f"field {key}: expected bytes, got {type(value).__name__}")
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if type(value) is int and value in (0, 1):
            return bool(value)
        if value is None:
            return False
        raise BodyError(f"field {key}: expected a bool, got {type(value).__name__}")
    # integers
    if value is None:
        return 0
    if type(value) is not int:
        raise BodyError(f"field {key}: expected an integer, got {type(value).__name__}")
    lo, hi = _RANGES[kind]
    if not lo <= value <= hi:
        raise BodyError(f"field {key}: {value} out of range for {kind}")
    return value


_ENCODERS: dict[type[Body], Callable[[Any], dict[str, Any]]] = {}
_DECODERS: dict[type[Body], Callable[[object], Any]] = {}


def _build_encoder(cls: type[Body]) -> Callable[[Any], dict[str, Any]]:
    """Compile `cls` -> map: straight-line code in Go's key order (see `_build_decoder`)."""
    lines = ["def encode(msg):", "    out = {}"]
    for key, attr, _kind, omitempty in cls.FIELDS:
        if omitempty:  # every zero value of our field types is falsy
            lines += [f"    v = msg.{attr}", "    if v:", f"        out[{key!r}] = v"]
        else:
            lines.append(f"    out[{key!r}] = msg.{attr}")
    lines.append("    return out")
    env: dict[str, Any] = {}
    exec("\n".join(lines), env)  # the source is built from class metadata only
    encode: Callable[[Any], dict[str, Any]] = env["encode"]
    return encode


def _as_dict(cls: type[Body], raw: object) -> dict[Any, Any]:
    if not isinstance(raw, Mapping):
        raise BodyError(f"{cls.__name__}: body is {type(raw).__name__}, not a map")
    return dict(raw)


# Per kind: the test that a value is already of the expected type and range
# (`{lo}`/`{hi}` filled in for integers) and the expression that converts it.
_FAST: Final[dict[str, tuple[str, str]]] = {
    "str": ("type(v) is bytes and v.isascii()", 'v.decode("ascii")'),
    "bytes": ("type(v) is bytes", "v"),
    "nbytes": ("v is None or type(v) is bytes", "v"),
    "bool": ("type(v) is bool", "v"),
    "int": ("type(v) is int and {lo} <= v <= {hi}", "v"),
}


def _build_decoder(cls: type[B]) -> Callable[[object], B]:
    """Compile a decoder for `cls`: one straight-line function per message class.

    This is the UDP hot path (every ping and ack), so instead of looping over
    FIELDS it generates code (as `dataclasses` itself does) with an inline type
    check per field and falls back to `_convert` only for unusual encodings.
    It fills the slots directly, skipping the frozen `__init__`; bodies are
    plain records without `__post_init__`.
    """
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: generated decoders skip __post_init__")
    by_attr = {attr: (key, kind) for key, attr, kind, _omit in cls.FIELDS}
    env: dict[str, Any] = {"_new": object.__new__, "_cls": cls, "_as_dict": _as_dict}
    lines = [
        "def decode(raw):",
        "    if type(raw) is not dict:",
        "        raw = _as_dict(_cls, raw)",
        "    get = raw.get",
        "    obj = _new(_cls)",
    ]
    for index, field in enumerate(dataclasses.fields(cls)):
        key, kind = by_attr[field.name]
        env[f"_set{index}"] = cls.__dict__[field.name].__set__
        env[f"_conv{index}"] = functools.partial(_convert, key, kind)
        test, value = _FAST["int" if kind in _RANGES else kind]
        if kind in _RANGES:
            lo, hi = _RANGES[kind]
            test = test.format(lo=lo, hi=hi)
        lines += [
            f"    v = get({key.encode()!r})",
            f"    _set{index}(obj, {value} if {test} else _conv{index}(v))",
        ]
    lines.append("    return obj")
    exec("\n".join(lines), env)  # the source is built above from class metadata only
    decode: Callable[[object], B] = env["decode"]
    return decode


def body_from_map(cls: type[B], raw: object) -> B:
    """Build `cls` from a decoded `raw=True` msgpack map.

    Missing keys and nil values give Go's zero values; unknown keys are ignored.
    Raises `BodyError` for a non-map or a field of the wrong type or range.
    """
    decoder = _DECODERS.get(cls)
    if decoder is None:
        decoder = _DECODERS[cls] = _build_decoder(cls)
    return decoder(raw)  # type: ignore[no-any-return]


def decoder_for(cls: type[B]) -> Callable[[object], B]:
    """The compiled map -> `cls` decoder (what `body_from_map` calls), for hot loops."""
    decoder = _DECODERS.get(cls)
    if decoder is None:
        decoder = _DECODERS[cls] = _build_decoder(cls)
    return decoder


def decode_body(cls: type[B], data: bytes) -> B:
    """Decode one msgpack body that must fill `data` exactly."""
    return body_from_map(cls, unpack(data))


_MAKERS: dict[type[Body], Callable[..., Any]] = {}


def maker_for(cls: type[B]) -> Callable[..., B]:
    """A positional constructor of `cls` (every field, in declaration order, no defaults).

    Builds the same value as `cls(...)` at about a third of the cost: a frozen dataclass
    `__init__` goes through `object.__setattr__` per field. For loops over a push/pull's
    N member states; no validation (as `cls(...)` does none either).
    """
    maker = _MAKERS.get(cls)
    if maker is None:
        if hasattr(cls, "__post_init__"):
            raise TypeError(f"{cls.__name__}: makers skip __post_init__")
        names = [f.name for f in dataclasses.fields(cls)]
        env: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
        lines = [f"def make({', '.join(names)}):", "    obj = _new(_cls)"]
        for index, name in enumerate(names):
            env[f"_set{index}"] = cls.__dict__[name].__set__
            lines.append(f"    _set{index}(obj, {name})")
        lines.append("    return obj")
        exec("\n".join(lines), env)  # the source is built from class metadata only
        maker = _MAKERS[cls] = env["make"]
    return maker
