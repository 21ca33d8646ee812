"""Compound messages: several complete messages in one UDP packet.

Layout: ``0x07 | N:u8 | len_1:u16be … len_N:u16be | msg_1 … msg_N``. Each part
starts with its own type byte.

Interop caution: memberlist 0.2.2 computes the size of the length table as
``numParts*2`` in uint8 arithmetic, so it misreads compounds of 128 or more
parts (the offset wraps). Senders talking to 0.2.2 should keep compounds at
`MAX_PARTS_GO_022` parts or fewer; this decoder reads all 255 correctly.
"""

from __future__ import annotations

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
    out = bytearray((COMPOUND_TYPE, count))
    for part in parts:
        size = len(part)
        if size > MAX_PART_LEN:
            raise ValueError(f"compound part of {size} bytes exceeds {MAX_PART_LEN}")
        out += size.to_bytes(2, "big")
    for part in parts:
        out += part
    return bytes(out)


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
    if len(body) < offset:
        raise CompoundError(f"compound: length table of {count} parts is truncated")
    parts: list[bytes] = []
    for index in range(count):
        size = (body[1 + 2 * index] << 8) | body[2 + 2 * index]
        end = offset + size
        if end > len(body):
            return parts, count - index
        parts.append(body[offset:end])
        offset = end
    return parts, 0
