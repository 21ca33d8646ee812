"""Member names: the one rule for which names we keep, our own and those peers send.

A name is kept in the member table, in Serf's status map and in every push/pull we
send afterwards, so it must be encodable again and fit in what we send. The rule:

* valid UTF-8. Go strings are bytes, so the decoders (`wire.msgpack_body`,
  `serf.messages`) turn non-UTF-8 ones into `str` with `surrogateescape` rather than
  fail the whole packet or push/pull; such a str cannot be encoded by a strict encoder
  (Serf's, JSON to a UTF-8 stream): one alive named `b"\\xff\\xfe"` once made every
  push/pull raise. The message carrying it is dropped here, where it would be kept, and
  only that message (one state of a push/pull, one entry of a Serf state);
* not empty (an empty `Node` in a ping means "whoever receives this");
* at most `MAX_NAME_BYTES` bytes of UTF-8.

memberlist sets no length limit, and Serf's optional `ValidateNodeNames` (not in
Debian's serf 0.8.2) caps only the local name, at 128 characters. Ours is derived from
what fits in one packet: the largest gossip message carrying a name is an alive with
512 bytes of meta, an IPv6 address and 0xFFFFFFFF as incarnation, 588 bytes plus the
name; memberlist's default 1400-byte packet minus the largest encryption overhead (45)
and the compound overhead (4) leaves 1351, so up to 763 bytes would fit. 512 bytes
keeps a margin and still takes any DNS name (253). A name above it is refused at start
and dropped when a peer sends it; Go members with longer names (none we know of) would
not be seen by us.
"""

from __future__ import annotations

import enum
from typing import Final

from swimguard.errors import UsageError

__all__ = [
    "MAX_NAME_BYTES",
    "BadNameError",
    "NameProblem",
    "check_local_name",
    "is_text",
    "name_problem",
]

MAX_NAME_BYTES: Final = 512


class NameProblem(enum.Enum):
    """Why a name is refused; the value is the drop counter's label."""

    EMPTY = "name_empty"
    TOO_LONG = "name_too_long"
    NOT_UTF8 = "name_not_utf8"


class BadNameError(UsageError, ValueError):
    """Our own node name breaks the rule (a `UsageError` and a `ValueError`)."""


def name_problem(name: str) -> NameProblem | None:
    """None if `name` may be kept, else why not. Cheap for the usual short ASCII name."""
    if name.isascii():
        if not name:
            return NameProblem.EMPTY
        return NameProblem.TOO_LONG if len(name) > MAX_NAME_BYTES else None
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return NameProblem.NOT_UTF8
    return NameProblem.TOO_LONG if size > MAX_NAME_BYTES else None


def is_text(value: str) -> bool:
    """True if `value` encodes as UTF-8 (no lone surrogates from a non-UTF-8 peer string)."""
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_local_name(name: str) -> None:
    """Raise `BadNameError` naming the rule if our own node name may not be used."""
    problem = name_problem(name)
    if problem is NameProblem.EMPTY:
        raise BadNameError("node name must not be empty")
    if problem is NameProblem.TOO_LONG:
        size = len(name.encode("utf-8"))
        raise BadNameError(
            f"node name is {size} bytes of UTF-8; the limit is {MAX_NAME_BYTES} "
            "(the largest alive message must fit in one packet)"
        )
    if problem is NameProblem.NOT_UTF8:
        raise BadNameError("node name is not valid Unicode text (it cannot be encoded as UTF-8)")
