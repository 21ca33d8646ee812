"""Member records as seen from outside the core."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping

from swimguard.protocol.outgoing import Address


class MemberState(enum.Enum):
    """State of a member; values match memberlist's push/pull `State`."""

    ALIVE = 0
    SUSPECT = 1
    DEAD = 2
    LEFT = 3


@dataclasses.dataclass(frozen=True, slots=True)
class Member:
    """An immutable snapshot of one member.

    `tags` are the member's Serf tags, decoded from `meta`, on every member an `Agent`
    that runs Serf (`serf_compat`, the default) hands out: `member.tags["role"]`. A
    member without Serf tags reads as `{"role": <meta as text>}`, as Serf reads it. None
    where nobody decoded them (a plain memberlist agent, the core, the simulator). They
    are derived from `meta`, so they take no part in comparisons (nor in `repr`, which
    recorded simulation traces digest).
    """

    name: str
    addr: Address
    incarnation: int
    state: MemberState
    meta: bytes = b""
    vsn: bytes = bytes((1, 5, 2, 2, 5, 5))
    tags: Mapping[str, str] | None = dataclasses.field(default=None, compare=False, repr=False)
