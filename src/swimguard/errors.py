"""Exception hierarchy.

`SwimError` is the root. Problems in bytes that came from the network raise
`DecodeError` (or a subclass naming what was wrong); the protocol core catches
those, drops the input and counts it. Misuse of the API by the caller raises
`UsageError` (or `ValueError` for configuration values).
"""

from __future__ import annotations


class SwimError(Exception):
    """Base class of every exception raised on purpose by swimguard."""


class UsageError(SwimError):
    """The caller used the API in a way it does not support."""


class JoinError(SwimError):
    """No seed answered a join attempt."""


class UnknownMemberError(UsageError):
    """A member name was given where an address is accepted, and no such member is known."""


class DeliveryError(SwimError):
    """A reliable message did not reach its receiver (connect failure, reset, timeout)."""
