"""`EventTally`: counts of the events an agent delivered, the way Serf's telemetry counts them.

Serf counts member changes (`serf.member.join/failed/left/update/flap`), user events
(`serf.events`) and queries (`serf.queries`) where it hands them to the application;
our node reports the same facts as events, so the driver counts them as it hands them on.
That also gives a plain memberlist agent (no `serf_compat`) its member counters.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from swimguard.protocol.events import MemberFailed, MemberJoined, MemberLeft, MemberUpdated
from swimguard.serf.events import QueryReceived, UserEventReceived

__all__ = ["FLAP_TIMEOUT", "EventTally"]

FLAP_TIMEOUT = 60.0
"""Serf's default `FlapTimeout`: a failed member back within this many seconds flapped."""

# Failed members remembered for flap detection; beyond this the oldest are forgotten
# (a flap goes uncounted rather than memory growing with invented members).
_MAX_FAILED = 10_000


class EventTally:
    """Plain counters bumped per routed event (an isinstance chain and one addition)."""

    __slots__ = ("_clock", "_failed_at", "events", "failed", "flap", "join", "left", "queries",
                 "update")

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._failed_at: dict[str, float] = {}
        self.join = 0
        self.failed = 0
        self.left = 0
        self.update = 0
        self.flap = 0
        self.events = 0
        self.queries = 0

    def count(self, event: object) -> None:
        """Count one event of the node (the types above; others are ignored)."""
        if isinstance(event, MemberJoined):
            self.join += 1
            failed_at = self._failed_at.pop(event.member.name, None)
            if failed_at is not None and self._clock() - failed_at < FLAP_TIMEOUT:
                self.flap += 1
        elif isinstance(event, MemberUpdated):
            self.update += 1
        elif isinstance(event, MemberFailed):
            self.failed += 1
            failed = self._failed_at
            failed.pop(event.member.name, None)  # re-insert: newest last
            failed[event.member.name] = self._clock()
            if len(failed) > _MAX_FAILED:
                del failed[next(iter(failed))]
        elif isinstance(event, MemberLeft):
            self.left += 1
            self._failed_at.pop(event.member.name, None)
        elif isinstance(event, UserEventReceived):
            self.events += 1
        elif isinstance(event, QueryReceived):
            self.queries += 1
