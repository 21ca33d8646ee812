"""Typed views of the envelope layers, for inspection, tests and debugging tools.

`decode_packet` and `StreamDecoder` flatten the layers away; `inspect_packet`
and `inspect_stream` keep them, returning a tree of frozen dataclasses
(label header, encryption, CRC envelope, compress, compound) with the typed
messages as leaves. They accept any label (they report it) and decrypt only
when given a keyring. Errors are the same `DecodeError` subclasses.
"""

from __future__ import annotations

import dataclasses
from typing import Final

from swimguard.wire import compound as _compound
from swimguard.wire.checksum import CRC_HEADER_LEN, CRC_TYPE, strip_crc
from swimguard.wire.compression import LZW_ALGO, decompress_map
from swimguard.wire.encryption import NONCE_SIZE, Keyring
from swimguard.wire.errors import CompoundError, DecryptError, TruncatedError
from swimguard.wire.label import split_label
from swimguard.wire.messages import MessageType, unpack
from swimguard.wire.packet import DEFAULT_MAX_DECOMPRESSED, MAX_NESTING, Message, decode_message
from swimguard.wire.stream import DEFAULT_MAX_STREAM_BYTES, StreamDecoder, StreamMessage

__all__ = [
    "Checksummed",
    "Compound",
    "Compressed",
    "Encrypted",
    "EncryptedFrame",
    "Labelled",
    "Layer",
    "StreamLayer",
    "inspect_packet",
    "inspect_stream",
]


@dataclasses.dataclass(frozen=True, slots=True)
class Labelled:
    """Label header ``0xF4 len label`` (memberlist >= 0.3.0) and what follows it."""

    label: bytes
    inner: Layer | StreamLayer


@dataclasses.dataclass(frozen=True, slots=True)
class Encrypted:
    """An AES-GCM packet blob ``vsn | nonce | ciphertext||tag``, opened."""

    version: int
    nonce: bytes
    inner: Layer


@dataclasses.dataclass(frozen=True, slots=True)
class EncryptedFrame:
    """A stream encryption frame ``0x0A | length:u32be | blob``, opened."""

    length: int
    version: int
    nonce: bytes
    inner: StreamLayer


@dataclasses.dataclass(frozen=True, slots=True)
class Checksummed:
    """CRC envelope ``0x0C | crc32:u32be | payload`` (verified)."""

    crc: int
    inner: Layer


@dataclasses.dataclass(frozen=True, slots=True)
class Compressed:
    """A compress message (type 9); `algo` 0 is LZW."""

    algo: int
    inner: Layer | StreamLayer


@dataclasses.dataclass(frozen=True, slots=True)
class Compound:
    """A compound message (type 7): its parts and how many were truncated away."""

    parts: tuple[Layer, ...]
    truncated: int = 0


Layer = Labelled | Encrypted | Checksummed | Compressed | Compound | Message
StreamLayer = Labelled | EncryptedFrame | Compressed | StreamMessage

_COMPOUND: Final = int(MessageType.COMPOUND)
_COMPRESS: Final = int(MessageType.COMPRESS)
_ENCRYPT: Final = int(MessageType.ENCRYPT)


def inspect_packet(
    data: bytes,
    *,
    keyring: Keyring | None = None,
    max_decompressed: int = DEFAULT_MAX_DECOMPRESSED,
) -> Layer:
    """The layer tree of one datagram (decrypted only if `keyring` is given)."""
    data = bytes(data)
    label, offset = split_label(data)
    if offset:
        return Labelled(label, _packet_body(data[offset:], keyring, label, max_decompressed))
    return _packet_body(data, keyring, b"", max_decompressed)


def _packet_body(data: bytes, keyring: Keyring | None, label: bytes, budget: int) -> Layer:
    if keyring is not None:
        plain = keyring.decrypt(data, label)
        return Encrypted(data[0], data[1 : 1 + NONCE_SIZE], _packet_body(plain, None, b"", budget))
    if len(data) >= CRC_HEADER_LEN and data[0] == CRC_TYPE:
        crc = int.from_bytes(data[1:CRC_HEADER_LEN], "big")
        return Checksummed(crc, _message(strip_crc(data), [budget], 0))
    return _message(data, [budget], 0)


def _message(data: bytes, budget: list[int], depth: int) -> Layer:
    if not data:
        raise TruncatedError("empty message")
    if depth >= MAX_NESTING and data[0] in (_COMPOUND, _COMPRESS):
        raise CompoundError(f"messages nested more than {MAX_NESTING} deep")
    if data[0] == _COMPOUND:
        parts, truncated = _compound.split_compound(data[1:])
        return Compound(tuple(_message(p, budget, depth + 1) for p in parts), truncated)
    if data[0] == _COMPRESS:
        inner = decompress_map(unpack(data[1:]), budget[0])  # raises unless algo is LZW
        budget[0] -= len(inner)
        return Compressed(LZW_ALGO, _message(inner, budget, depth + 1))
    return decode_message(data)


def inspect_stream(
    data: bytes,
    *,
    keyring: Keyring | None = None,
    max_bytes: int = DEFAULT_MAX_STREAM_BYTES,
) -> StreamLayer:
    """The layer tree of one complete stream request or reply."""
    data = bytes(data)
    label, offset = split_label(data)
    if offset:
        return Labelled(label, _stream_body(data[offset:], keyring, label, max_bytes))
    return _stream_body(data, keyring, b"", max_bytes)


def _stream_body(data: bytes, keyring: Keyring | None, label: bytes, max_bytes: int) -> StreamLayer:
    if data[:1] == bytes((_ENCRYPT,)):
        if keyring is None:
            raise DecryptError("stream is encrypted and no keyring was given")
        length = int.from_bytes(data[1:5], "big")
        blob = data[5 : 5 + length]
        if len(data) < 5 or len(blob) < length:
            raise TruncatedError("stream: encryption frame truncated")
        plain = keyring.decrypt(blob, data[:5] + label)
        inner = _stream_body(plain, None, b"", max_bytes)
        return EncryptedFrame(length, blob[0], blob[1 : 1 + NONCE_SIZE], inner)
    decoder = StreamDecoder(max_bytes=max_bytes)
    message = decoder.feed(data)
    if message is None:
        decoder.eof()  # raises TruncatedError
        raise TruncatedError("stream: message incomplete")  # pragma: no cover
    if data[:1] == bytes((_COMPRESS,)):
        return Compressed(LZW_ALGO, message)  # the decoder refuses any other algorithm
    return message
