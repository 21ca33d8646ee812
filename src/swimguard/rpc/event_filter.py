"""Serf's event filters (`stream {Type}`): `member-join,user:deploy,query`, `*`, ..."""

from __future__ import annotations

import dataclasses
import enum

__all__ = ["EventFilter", "EventKind", "StreamRecord", "parse_event_filter"]


class EventKind(enum.StrEnum):
    """The `Event` values of stream records."""

    MEMBER_JOIN = "member-join"
    MEMBER_LEAVE = "member-leave"
    MEMBER_FAILED = "member-failed"
    MEMBER_UPDATE = "member-update"
    MEMBER_REAP = "member-reap"
    USER = "user"
    QUERY = "query"


@dataclasses.dataclass(frozen=True, slots=True)
class _Item:
    kind: EventKind | None  # None = `*`
    name: str | None  # `user:NAME` / `query:NAME`: an exact name


@dataclasses.dataclass(frozen=True, slots=True)
class EventFilter:
    """A parsed filter: an event passes if any item matches it."""

    items: tuple[_Item, ...]

    def matches(self, kind: EventKind, name: str | None = None) -> bool:
        for item in self.items:
            if item.kind is None:
                return True
            if item.kind is kind and (item.name is None or item.name == name):
                return True
        return False


def parse_event_filter(text: str) -> EventFilter | None:
    """The filter `text` describes, or None if any item is not one Serf knows."""
    if text == "":
        text = "*"
    items: list[_Item] = []
    for part in text.split(","):
        if part == "*":
            items.append(_Item(None, None))
            continue
        head, sep, name = part.partition(":")
        if sep and head in (EventKind.USER, EventKind.QUERY):
            items.append(_Item(EventKind(head), name))
            continue
        try:
            kind = EventKind(part)
        except ValueError:
            return None
        items.append(_Item(kind, None))
    return EventFilter(tuple(items))


@dataclasses.dataclass(frozen=True, slots=True)
class StreamRecord:
    """One event as streams send it: its kind and name (for filters) and the record map.

    A query record also carries the query and its deadline (event loop time): each
    connection registers it under its own `ID` for `respond`.
    """

    kind: EventKind
    name: str | None
    body: dict[str, object]
    query: object | None = None
    deadline: float = 0.0
