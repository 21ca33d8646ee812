"""Self-fencing (swimguard extension, off by default): "local health kills itself".

Lifeguard's health score says how much we trust our own judgement; at its maximum we are
so slow (a blocked loop, a failing application, lost packets in) that we accuse healthy
peers and answer too late to be believed. When it stays there `Config.self_fence_after`
seconds, `SelfFencing` emits `SelfFenced` once; the driver then leaves the cluster
gracefully and may exit for a supervisor to restart a fresh process. "Stays there"
allows one point below the maximum: a process whose loop blocks again and again gets an
ack through between two stalls (-1), then the next stall puts it back at the top. A score
two points below the maximum (two successful probes in a row) starts the wait again:
only a lasting fault fences.

The core does not leave by itself because a graceful leave is its owner's to make: a Serf
node gossips its leave intent before the memberlist leave, or Serf agents would record a
failure.
"""

from __future__ import annotations

from swimguard.protocol.awareness import Awareness
from swimguard.protocol.deadlines import Deadlines
from swimguard.protocol.events import Event, SelfFenced
from swimguard.protocol.timers import SELF_FENCE, Timer

__all__ = ["SelfFencing"]


class SelfFencing:
    """Watches how long the health score has been at its maximum; fences once."""

    __slots__ = ("_after", "_armed", "_awareness", "_deadlines", "_events", "fenced")

    def __init__(
        self,
        after: float,
        *,
        awareness: Awareness,
        deadlines: Deadlines[Timer],
        events: list[Event],
    ) -> None:
        self._after = after
        self._awareness = awareness
        self._deadlines = deadlines
        self._events = events
        self._armed: float | None = None
        self.fenced = False
        """True once `SelfFenced` was emitted (it is never emitted again)."""

    def watch(self, *, now: float) -> None:
        """After an input that may have moved the score: arm or disarm the fence timer."""
        if self._after <= 0 or self.fenced:
            return
        since = self._awareness.at_max_since
        if since is None:
            if self._armed is not None:
                self._armed = None
                self._deadlines.cancel(SELF_FENCE)
        elif self._armed != since:
            self._armed = since
            # Never in the past: a driver would take the gap for loop lag.
            self._deadlines.set(SELF_FENCE, max(since + self._after, now))

    def fire(self, *, now: float) -> None:
        """The `SelfFence` timer."""
        self._armed = None
        since = self._awareness.at_max_since
        if self.fenced or since is None or now < since + self._after:
            self.watch(now=now)
            return
        self.fenced = True
        self._events.append(SelfFenced(score=self._awareness.score, since=since, after=self._after))
