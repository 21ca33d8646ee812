"""CRC32 envelope (memberlist protocol 5): ``0x0C | crc32:u32be | payload``.

CRC-32/IEEE over the payload; it sits outside compression and inside encryption.
"""

from __future__ import annotations

import zlib
from typing import Final

from swimguard.wire.errors import ChecksumError

__all__ = ["CRC_HEADER_LEN", "CRC_TYPE", "add_crc", "strip_crc"]

CRC_TYPE: Final = 12
CRC_HEADER_LEN: Final = 5


def add_crc(payload: bytes) -> bytes:
    """Prefix `payload` with the hasCrc type byte and its big-endian CRC32."""
    return bytes((CRC_TYPE,)) + zlib.crc32(payload).to_bytes(4, "big") + payload


def strip_crc(data: bytes) -> bytes:
    """Verify a hasCrc envelope (type byte included) and return its payload.

    Like memberlist, only inputs of at least 5 bytes count as an envelope; the
    caller checks the type byte. Raises `ChecksumError` on mismatch.
    """
    expected = int.from_bytes(data[1:CRC_HEADER_LEN], "big")
    payload = data[CRC_HEADER_LEN:]
    if zlib.crc32(payload) != expected:
        raise ChecksumError("crc: checksum mismatch")
    return payload
