"""The one exception family raised for bad bytes from the network."""

from __future__ import annotations

from swimguard.errors import SwimError


class DecodeError(SwimError):
    """Input bytes are malformed, truncated, oversized or not for us.

    `reason` is a short stable label used by counters (``"body"``, ``"crc"``...).
    """

    reason = "malformed"


class BodyError(DecodeError):
    """A msgpack body is malformed or has a field of the wrong type or range."""

    reason = "body"
