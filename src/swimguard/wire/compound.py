"""Compound messages: several complete messages in one UDP packet.

Layout: ``0x07 | N:u8 | len_1:u16be … len_N:u16be | msg_1 … msg_N``. Each part
starts with its own type byte.

Interop caution: memberlist 0.2.2 computes the size of the length table as
``numParts*2`` in uint8 arithmetic, so it misreads compounds of 128 or more
parts (the offset wraps). Senders talking to 0.2.2 should keep compounds at
`MAX_PARTS_GO_022` parts or fewer; this decoder reads all 255 correctly.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Sequence
from typing import Final

from swimguard.wire.errors import CompoundError

__all__ = [
    "COMPOUND_TYPE",
    "MAX_PARTS",
    "MAX_PARTS_GO_022",
    "MAX_PART_LEN",
    "make_compound",
    "split_compound",
]

COMPOUND_TYPE: Final = 7
MAX_PARTS: Final = 255
MAX_PARTS_GO_022: Final = 127
MAX_PART_LEN: Final = 0xFFFF


def make_compound(parts: Sequence[bytes]) -> bytes:
    """Wrap complete messages into one compound message.

    Raises `ValueError` for more than 255 parts or a part longer than 65535 bytes
    (Go would silently wrap the count/length; callers must split instead).
    """
    count = len(parts)
    if count > MAX_PARTS:
        raise ValueError(f"a compound holds at most {MAX_PARTS} parts, got {count}")
    sizes = [len(part) for part in parts]
    if sizes and max(sizes) > MAX_PART_LEN:
        raise ValueError(f"compound part of {max(sizes)} bytes exceeds {MAX_PART_LEN}")
    # One struct call and one join: this runs for every gossip packet.
    return _header(count).pack(COMPOUND_TYPE, count, *sizes) + b"".join(parts)


def split_compound(body: bytes) -> tuple[list[bytes], int]:
    """Split a compound body (the bytes after the 0x07 type byte).

    Returns ``(parts, truncated)``: like memberlist, a part whose declared length
    runs past the end is dropped together with every part after it, and
    `truncated` counts them; trailing bytes after the last part are ignored.
    Raises `CompoundError` when the count byte or the length table is missing.
    """
    if not body:
        raise CompoundError("compound: missing part count")
    count = body[0]
    offset = 1 + 2 * count
    total = len(body)
    if total < offset:
        raise CompoundError(f"compound: length table of {count} parts is truncated")
    parts: list[bytes] = []
    append = parts.append
    for index, size in enumerate(_lengths(count).unpack_from(body, 1)):
        end = offset + size
        if end > total:
            return parts, count - index
        append(body[offset:end])
        offset = end
    return parts, 0


@functools.cache
def _header(count: int) -> struct.Struct:
    """Type byte, part count and `count` big-endian u16 lengths."""
    return struct.Struct(f">BB{count}H")


@functools.cache
def _lengths(count: int) -> struct.Struct:
    """The length table of a compound of `count` parts."""
    return struct.Struct(f">{count}H")
