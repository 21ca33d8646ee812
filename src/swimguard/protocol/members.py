"""Member records as seen from outside the core."""

from __future__ import annotations

import dataclasses
import enum

from swimguard.protocol.outgoing import Address


class MemberState(enum.Enum):
    """State of a member; values match memberlist's push/pull `State`."""

    ALIVE = 0
    SUSPECT = 1
    DEAD = 2
    LEFT = 3


@dataclasses.dataclass(frozen=True, slots=True)
class Member:
    """An immutable snapshot of one member."""

    name: str
    addr: Address
    incarnation: int
    state: MemberState
    meta: bytes = b""
    vsn: bytes = bytes((1, 5, 2, 2, 5, 5))
