"""The one exception family raised for bad bytes from the network.

Every decoder in `swimguard.wire` raises only `DecodeError` or a subclass.
`reason` is a short, stable label the protocol core uses as a drop counter key;
the message text is for logs and may change.
"""

from __future__ import annotations

from swimguard.errors import SwimError

__all__ = [
    "BodyError",
    "ChecksumError",
    "CompoundError",
    "CompressionError",
    "DecodeError",
    "DecryptError",
    "LabelError",
    "TooLargeError",
    "TruncatedError",
    "UnknownTypeError",
]


class DecodeError(SwimError):
    """Input bytes are malformed, truncated, oversized or not for us.

    `reason` is a short stable label used by counters (``"body"``, ``"crc"``...).
    """

    reason = "malformed"


class BodyError(DecodeError):
    """A msgpack body is malformed or has a field of the wrong type or range."""

    reason = "body"


class UnknownTypeError(DecodeError):
    """The message type byte is not one this position in the protocol accepts."""

    reason = "unknown_type"


class TruncatedError(DecodeError):
    """The input ends before the message it announces (or is empty)."""

    reason = "truncated"


class TooLargeError(DecodeError):
    """A declared or decompressed size exceeds the configured bound."""

    reason = "too_large"


class LabelError(DecodeError):
    """The cluster label header is malformed or does not match ours."""

    reason = "label"


class DecryptError(DecodeError):
    """No installed key opens the data, or plaintext arrived where encryption is required."""

    reason = "decrypt"


class ChecksumError(DecodeError):
    """The CRC32 envelope does not match its payload."""

    reason = "crc"


class CompressionError(DecodeError):
    """A compress message is malformed: unknown algorithm or invalid LZW stream."""

    reason = "compress"


class CompoundError(DecodeError):
    """A compound message is malformed, truncated or nested too deeply."""

    reason = "compound"
