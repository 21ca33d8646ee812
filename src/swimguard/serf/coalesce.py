"""Member and user event coalescing, as Serf's agent does it (spec serf-rpc §3.4).

Serf's agent holds member events until `quiescent` seconds pass without a new one, or
`period` seconds after the first (3 s / 1 s), then delivers the latest event of each
member, dropping one whose kind repeats what was last delivered for that member (an
update always passes). User events sent with `coalesce=True` are held the same way
(separate timers) and only the newest Lamport time per event name is delivered;
`coalesce=False` ones pass at once. Everything else passes at once.

Serf the library does not coalesce unless asked; its agent sets both pairs. `Coalescer`
is pure (now= keyword-only): `SerfNode` runs it when built with `coalesce=`.
"""

from __future__ import annotations

import dataclasses
from typing import Final

from swimguard.protocol.events import MemberFailed, MemberJoined, MemberLeft, MemberUpdated
from swimguard.serf.events import UserEventReceived
from swimguard.serf.status import MemberReaped

__all__ = ["SERF_AGENT_COALESCE", "Coalesce", "Coalescer"]

MemberEvent = MemberJoined | MemberUpdated | MemberFailed | MemberLeft | MemberReaped
_MAX_REMEMBERED: Final = 100_000
_MEMBER_EVENTS: Final = (MemberJoined, MemberUpdated, MemberFailed, MemberLeft, MemberReaped)


@dataclasses.dataclass(frozen=True, slots=True)
class Coalesce:
    """Coalescing periods in seconds (`period` > 0, 0 < `quiescent` <= `period`)."""

    period: float = 3.0
    quiescent: float = 1.0
    user_period: float = 3.0
    user_quiescent: float = 1.0

    def __post_init__(self) -> None:
        for total, quiet in (
            (self.period, self.quiescent),
            (self.user_period, self.user_quiescent),
        ):
            if not (0 < quiet <= total < float("inf")):
                raise ValueError("coalesce periods: need 0 < quiescent <= period, finite")


SERF_AGENT_COALESCE: Final = Coalesce()
"""What `serf agent` uses: 3 s / 1 s for member events and for user events."""


class _Window:
    """One pair of timers: flush at first + period, or last + quiescent, whichever first."""

    __slots__ = ("_period", "_quiescent", "first", "last")

    def __init__(self, period: float, quiescent: float) -> None:
        self._period = period
        self._quiescent = quiescent
        self.first: float | None = None
        self.last = 0.0

    def touch(self, now: float) -> None:
        if self.first is None:
            self.first = now
        self.last = now

    def deadline(self) -> float | None:
        if self.first is None:
            return None
        return min(self.first + self._period, self.last + self._quiescent)

    def reset(self) -> None:
        self.first = None


def _member_name(event: MemberEvent) -> str:
    return event.member.name


class Coalescer:
    """Holds member and coalescable user events; `flush` delivers what is due."""

    def __init__(self, periods: Coalesce) -> None:
        self._members = _Window(periods.period, periods.quiescent)
        self._users = _Window(periods.user_period, periods.user_quiescent)
        self._latest: dict[str, MemberEvent] = {}
        self._delivered: dict[str, type] = {}
        self._user_latest: dict[str, UserEventReceived] = {}

    def add(self, event: object, *, now: float) -> bool:
        """True if `event` is held (delivered later by `flush`), False to pass it on now."""
        if isinstance(event, _MEMBER_EVENTS):
            self._latest[_member_name(event)] = event
            self._members.touch(now)
            return True
        if isinstance(event, UserEventReceived) and event.coalesce:
            held = self._user_latest.get(event.name)
            if held is None or event.ltime > held.ltime:
                self._user_latest[event.name] = event
            self._users.touch(now)
            return True
        return False

    def next_deadline(self) -> float | None:
        found = [d for d in (self._members.deadline(), self._users.deadline()) if d is not None]
        return min(found, default=None)

    def flush(self, *, now: float) -> list[object]:
        """The held events whose window closed at `now`: member events grouped by kind
        (Serf sends one record per kind), then user events."""
        out: list[object] = []
        deadline = self._members.deadline()
        if deadline is not None and now >= deadline:
            self._members.reset()
            latest, self._latest = self._latest, {}
            for kind in _MEMBER_EVENTS:
                for name, event in latest.items():
                    if type(event) is not kind:
                        continue
                    if kind is not MemberUpdated and self._delivered.get(name) is kind:
                        continue  # the same news again: Serf suppresses it
                    if kind is MemberReaped:
                        self._delivered.pop(name, None)  # forgotten: nothing to repeat
                    else:
                        if len(self._delivered) >= _MAX_REMEMBERED:
                            self._delivered.clear()  # only costs a repeated event
                        self._delivered[name] = kind
                    out.append(event)
        deadline = self._users.deadline()
        if deadline is not None and now >= deadline:
            self._users.reset()
            users, self._user_latest = self._user_latest, {}
            out.extend(users.values())
        return out
