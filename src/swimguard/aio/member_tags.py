"""`Member.tags` for an agent that runs Serf: its Serf tags, decoded from `meta` once.

The core knows only raw metadata (`Member.meta`); the Serf reading of it (`0xFF` + a
msgpack map, or Serf protocol 2's bare role) belongs to the Serf layer. The agent fills
`tags` on every member it hands out when it runs Serf, so applications read
`member.tags["role"]` instead of decoding metadata themselves.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from types import MappingProxyType
from typing import TypeVar

from swimguard.protocol.events import (
    MemberFailed,
    MemberJoined,
    MemberLeft,
    MemberSuspected,
    MemberUpdated,
    NameConflict,
)
from swimguard.protocol.members import Member
from swimguard.serf.tags import decode_tags

__all__ = ["with_tags", "with_tags_in"]

E = TypeVar("E")

_MEMBER_EVENTS = (MemberJoined, MemberUpdated, MemberSuspected, MemberFailed, MemberLeft)


@functools.lru_cache(maxsize=1024)
def _tags_of(meta: bytes) -> Mapping[str, str]:
    # Members mostly share a few tag sets: decode each once (read-only, as it is shared).
    return MappingProxyType(decode_tags(meta))


def with_tags(member: Member) -> Member:
    """`member` with `tags` decoded from its `meta` (Serf's rule: never raises)."""
    # A plain dict of its own for each member: it prints and compares as users expect.
    return dataclasses.replace(member, tags=dict(_tags_of(member.meta)))


def with_tags_in(event: E) -> E:
    """`event` with `tags` on the members it carries; any other event as it is."""
    if isinstance(event, _MEMBER_EVENTS):
        tagged: object = type(event)(with_tags(event.member))
    elif isinstance(event, NameConflict):
        tagged = NameConflict(with_tags(event.existing), with_tags(event.other))
    else:
        return event
    return tagged  # type: ignore[return-value]
