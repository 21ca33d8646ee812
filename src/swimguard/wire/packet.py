"""UDP packets: typed messages <-> the bytes memberlist puts in a datagram.

Layers, innermost first (memberlist's order): message or compound →
compress (only if shorter) → CRC envelope → encryption → label header.
`decode_packet` undoes them and flattens compounds and compressed messages
into one list of typed messages.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Final

from swimguard.wire import compound as _compound
from swimguard.wire.checksum import CRC_HEADER_LEN, CRC_TYPE, add_crc, strip_crc
from swimguard.wire.compression import (
    DecompressionBudget,
    compress_message_if_shorter,
    decompress_message,
)
from swimguard.wire.encryption import Keyring
from swimguard.wire.errors import (
    CompoundError,
    DecodeError,
    DecryptError,
    TruncatedError,
    UnknownTypeError,
)
from swimguard.wire.label import LABEL_TYPE, add_label, check_label
from swimguard.wire.messages import (
    AckResp,
    Alive,
    Body,
    Dead,
    ErrResp,
    IndirectPingReq,
    MessageType,
    NackResp,
    Ping,
    Suspect,
    decoder_for,
    encode_body,
    unpack,
)

__all__ = [
    "DEFAULT_MAX_DECOMPRESSED",
    "MAX_NESTING",
    "Message",
    "UserData",
    "decode_message",
    "decode_packet",
    "encode_message",
    "encode_packet",
    "make_compound",
]

make_compound = _compound.make_compound

# memberlist reads at most 64 KiB per datagram; no legitimate packet expands to
# more than a few times that. Bounds the total output of all compress layers.
DEFAULT_MAX_DECOMPRESSED: Final = 1 << 20
# compress(compound(...)) is what Go sends; deeper nesting is legal but useless
# and would otherwise let a small packet recurse thousands of levels deep.
MAX_NESTING: Final = 8


@dataclasses.dataclass(frozen=True, slots=True)
class UserData:
    """A memberlist user message (type 8) on UDP: opaque delegate bytes."""

    data: bytes


Message = Ping | IndirectPingReq | AckResp | NackResp | Suspect | Alive | Dead | UserData | ErrResp

_TYPE_OF: Final[dict[type[Body], int]] = {
    Ping: MessageType.PING,
    IndirectPingReq: MessageType.INDIRECT_PING,
    AckResp: MessageType.ACK,
    Suspect: MessageType.SUSPECT,
    Alive: MessageType.ALIVE,
    Dead: MessageType.DEAD,
    NackResp: MessageType.NACK,
    ErrResp: MessageType.ERR,
}
# Decoders of the types memberlist handles on UDP (errResp is stream-only: Go drops it here).
_PACKET_DECODERS: Final[dict[int, Callable[[object], Message]]] = {
    int(t): decoder_for(cls)  # type: ignore[misc]
    for cls, t in _TYPE_OF.items()
    if cls is not ErrResp
}
# Gossip (suspect/alive/dead) reaches every member many times over, byte for byte the
# same: memoise its decoding. Only successful decodes are kept and a message is a frozen
# value, so a hit returns exactly what decoding would; the size bounds keep the memory
# small (a full cache is simply emptied).
_GOSSIP_TYPES: Final = frozenset(
    {int(MessageType.SUSPECT), int(MessageType.ALIVE), int(MessageType.DEAD)}
)
GOSSIP_CACHE_ENTRIES: Final = 4096
GOSSIP_CACHE_MAX_LEN: Final = 1024
_gossip_cache: dict[bytes, Message] = {}
# The other direction, for members that re-gossip what they decoded: a memoised message
# (by identity; the entry keeps it alive, so the id is not reused) whose bytes are exactly
# what encoding it gives. Emptied together with `_gossip_cache`.
_gossip_bytes: dict[int, tuple[Message, bytes]] = {}
_USER: Final = int(MessageType.USER)
_COMPOUND: Final = int(MessageType.COMPOUND)
_COMPRESS: Final = int(MessageType.COMPRESS)


def encode_message(msg: Message) -> bytes:
    """Type byte + msgpack body (UserData: ``0x08`` + the raw bytes)."""
    known = _gossip_bytes.get(id(msg))
    if known is not None and known[0] is msg:
        return known[1]
    if isinstance(msg, UserData):
        return bytes((_USER,)) + msg.data
    return bytes((_TYPE_OF[type(msg)],)) + encode_body(msg)


def encode_packet(
    payload: bytes,
    *,
    compress: bool = False,
    crc: bool = False,
    keyring: Keyring | None = None,
    encryption_version: int = 1,
    label: bytes = b"",
) -> bytes:
    """Wrap one message (or compound) for a datagram, in memberlist's layer order.

    Compression is kept only if it makes the payload shorter. `ValueError` for
    an empty payload (memberlist 0.2.2 crashes on empty messages) or a label
    longer than 255 bytes.
    """
    if not payload:
        raise ValueError("refusing to send an empty message")
    if compress:
        compressed = compress_message_if_shorter(payload)
        if compressed is not None:
            payload = compressed
    if crc:
        payload = add_crc(payload)
    if keyring is not None:
        payload = keyring.encrypt(payload, label, encryption_version)
    return add_label(payload, label)


def decode_packet(
    data: bytes,
    *,
    keyring: Keyring | None = None,
    label: bytes = b"",
    verify_incoming: bool = True,
    max_decompressed: int = DEFAULT_MAX_DECOMPRESSED,
    errors: list[DecodeError] | None = None,
    budget: DecompressionBudget | None = None,
) -> list[Message]:
    """Decode one datagram into a flat list of messages.

    Strips and checks the label, decrypts (plaintext is accepted when decryption
    fails only if `verify_incoming` is false), verifies a CRC envelope,
    decompresses (at most `max_decompressed` bytes in total) and flattens
    compounds. Raises `DecodeError` subclasses only.

    Every compress layer of the packet draws on one `DecompressionBudget` of
    `max_decompressed` bytes, charged also by layers that fail, so a packet of
    many bombs decompresses at most that much in total. Pass `budget` to supply
    it yourself (it then replaces `max_decompressed`) and read what was spent.

    By default any bad part fails the whole packet. Pass a list as `errors` to
    behave like memberlist instead: problems inside compound parts (including
    truncated parts) are appended to it and the good parts are still returned.
    """
    if type(data) is not bytes:
        data = bytes(data)
    if keyring is None and not label and data:
        # Hot path: a bare ping/ack/gossip message, as most UDP traffic is.
        decoder = _PACKET_DECODERS.get(data[0])
        if decoder is not None:
            return [_decode_one(data, decoder)]
    if label or (data and data[0] == LABEL_TYPE):
        data = check_label(data, label)
    if keyring is not None:
        try:
            data = keyring.decrypt(data, label)
        except DecryptError:
            if verify_incoming:
                raise
    if len(data) >= CRC_HEADER_LEN and data[0] == CRC_TYPE:
        data = strip_crc(data)
    out: list[Message] = []
    if budget is None:
        budget = DecompressionBudget(max_decompressed)
    _decode_into(data, out, budget, 0, errors)
    return out


def decode_message(data: bytes) -> Message:
    """Decode one bare message (type byte + body); no compound or compress layers."""
    data = bytes(data)
    if data and data[0] in (_COMPOUND, _COMPRESS):
        raise UnknownTypeError(f"message type {data[0]} is a container, not a single message")
    messages: list[Message] = []
    _decode_into(data, messages, DecompressionBudget(0), MAX_NESTING, None)
    return messages[0]


def _decode_one(data: bytes, decoder: Callable[[object], Message]) -> Message:
    """Decode one msgpack-bodied message (`data` starts with its type byte)."""
    if data[0] not in _GOSSIP_TYPES or len(data) > GOSSIP_CACHE_MAX_LEN:
        return decoder(unpack(data[1:]))
    msg = _gossip_cache.get(data)
    if msg is None:
        msg = decoder(unpack(data[1:]))  # raises before anything is cached
        if len(_gossip_cache) >= GOSSIP_CACHE_ENTRIES:
            _gossip_cache.clear()
            _gossip_bytes.clear()
        _gossip_cache[data] = msg
        if encode_message(msg) == data:  # canonical (as we and Go write it)
            _gossip_bytes[id(msg)] = (msg, data)
    return msg


def _detached(exc: DecodeError) -> DecodeError:
    """`exc` without its traceback and chained exceptions, for keeping in `errors`.

    The traceback holds this very frame, whose `errors` list holds the exception: a
    reference cycle that keeps every frame of the failed decode alive (a failed LZW
    stream's output buffer and table, up to the whole budget) until the cyclic
    garbage collector runs. Under a flood of bad packets that is tens of MiB at a
    time, and the heap it fragments stays with the process. Callers only read
    `reason` and the message.
    """
    exc.__traceback__ = None
    exc.__context__ = None
    exc.__cause__ = None
    return exc


def _decode_into(
    data: bytes,
    out: list[Message],
    budget: DecompressionBudget,
    depth: int,
    errors: list[DecodeError] | None,
) -> None:
    if not data:
        raise TruncatedError("empty message")
    kind = data[0]
    decoder = _PACKET_DECODERS.get(kind)
    if decoder is not None:
        out.append(_decode_one(data, decoder))
    elif kind == _USER:
        out.append(UserData(data[1:]))
    elif depth >= MAX_NESTING and kind in (_COMPOUND, _COMPRESS):
        raise CompoundError(f"messages nested more than {MAX_NESTING} deep")
    elif kind == _COMPOUND:
        parts, truncated = _compound.split_compound(data[1:])
        cached = _gossip_cache.get
        for part in parts:
            msg = cached(part)  # only ever holds successfully decoded gossip
            if msg is not None:
                out.append(msg)
                continue
            if errors is None:
                _decode_into(part, out, budget, depth + 1, errors)
                continue
            try:
                _decode_into(part, out, budget, depth + 1, errors)
            except DecodeError as exc:
                errors.append(_detached(exc))
        if truncated:
            error = CompoundError(f"compound: {truncated} truncated parts")
            if errors is None:
                raise error
            errors.append(error)
    elif kind == _COMPRESS:
        inner = decompress_message(data[1:], budget)  # charges the budget, even on failure
        _decode_into(inner, out, budget, depth + 1, errors)
    else:
        raise UnknownTypeError(f"message type {kind} not supported in a packet")
