"""Serf's agent coalesces member and user events before streams see them; so do these.

A serf agent holds member events until 1 s passed without a new one, or 3 s since the
first (`CoalescePeriod`/`QuiescentPeriod`), then sends one record per event type with the
latest event of each member, skipping a member whose latest event repeats the type last
sent for it (member-update excepted). Pure: the caller passes `now` and flushes at
`deadline()`.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Final

from swimguard.rpc.codec import sorted_map
from swimguard.rpc.event_filter import EventKind, StreamRecord

__all__ = ["MemberEventCoalescer", "UserEventCoalescer"]

COALESCE_PERIOD: Final = 3.0
QUIESCENT_PERIOD: Final = 1.0
MAX_REMEMBERED: Final = 65_536
"""Members whose last sent event type is remembered (Serf keeps all; gossip names anything)."""


class MemberEventCoalescer:
    """Member events in, coalesced member-event records out."""

    def __init__(
        self,
        *,
        period: float = COALESCE_PERIOD,
        quiescent: float = QUIESCENT_PERIOD,
        remembered: int = MAX_REMEMBERED,
    ) -> None:
        self._period = period
        self._quiescent = quiescent
        self._remembered = remembered
        # member name -> (latest kind, member map), in arrival order.
        self._latest: dict[str, tuple[EventKind, dict[str, Any]]] = {}
        self._sent: OrderedDict[str, EventKind] = OrderedDict()
        self._first_at: float | None = None
        self._last_at = 0.0

    def add(self, record: StreamRecord, *, now: float) -> None:
        """Hold a member-event record (its `Members` each count as one event)."""
        members = record.body.get("Members")
        if not isinstance(members, list):
            return
        for member in members:
            self._latest[str(member["Name"])] = (record.kind, member)
        if self._first_at is None:
            self._first_at = now
        self._last_at = now

    def deadline(self) -> float | None:
        """When `flush` has something to send, or None when nothing is held."""
        if self._first_at is None:
            return None
        return min(self._first_at + self._period, self._last_at + self._quiescent)

    def flush(self, *, now: float) -> list[StreamRecord]:
        """The records due at `now` (none before `deadline()`)."""
        deadline = self.deadline()
        if deadline is None or now < deadline:
            return []
        grouped: dict[EventKind, list[dict[str, Any]]] = {}
        for name, (kind, member) in self._latest.items():
            if self._sent.get(name) is kind and kind is not EventKind.MEMBER_UPDATE:
                continue
            self._sent.pop(name, None)
            self._sent[name] = kind
            grouped.setdefault(kind, []).append(member)
        while len(self._sent) > self._remembered:
            self._sent.popitem(last=False)
        self._latest.clear()
        self._first_at = None
        return [
            StreamRecord(kind, None, sorted_map(Event=kind.value, Members=members))
            for kind, members in grouped.items()
        ]


MAX_USER_NAMES: Final = 4096
"""Distinct user event names held at once; events of further names pass uncoalesced."""
MAX_USER_SAME_TIME: Final = 64
"""Events of one name and one Lamport time held (more are dropped, as duplicates would be)."""


class UserEventCoalescer:
    """User events sent with `Coalesce: true`: per name, only those of the newest LTime.

    Held for the same 1 s of quiet / 3 s at most as member events (Serf's agent sets
    `UserCoalescePeriod`/`UserQuiescentPeriod` to those); `add` returns False for an event
    it does not hold (not coalescing, or too many names held), which the caller sends now.
    """

    def __init__(
        self, *, period: float = COALESCE_PERIOD, quiescent: float = QUIESCENT_PERIOD
    ) -> None:
        self._period = period
        self._quiescent = quiescent
        self._latest: dict[str, tuple[int, list[StreamRecord]]] = {}
        self._first_at: float | None = None
        self._last_at = 0.0

    def add(self, record: StreamRecord, *, now: float) -> bool:
        body = record.body
        if record.kind is not EventKind.USER or body.get("Coalesce") is not True:
            return False
        name = str(body.get("Name", ""))
        ltime = body.get("LTime")
        if not isinstance(ltime, int):
            return False
        held = self._latest.get(name)
        if held is None and len(self._latest) >= MAX_USER_NAMES:
            return False
        if held is None or held[0] < ltime:
            self._latest[name] = (ltime, [record])
        elif held[0] == ltime and len(held[1]) < MAX_USER_SAME_TIME:
            held[1].append(record)
        # An older LTime than the one held is superseded: dropped, as Serf does.
        if self._first_at is None:
            self._first_at = now
        self._last_at = now
        return True

    def deadline(self) -> float | None:
        if self._first_at is None:
            return None
        return min(self._first_at + self._period, self._last_at + self._quiescent)

    def flush(self, *, now: float) -> list[StreamRecord]:
        deadline = self.deadline()
        if deadline is None or now < deadline:
            return []
        out = [record for _, records in self._latest.values() for record in records]
        self._latest.clear()
        self._first_at = None
        return out
