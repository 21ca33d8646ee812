"""Virtual time and the seeded event queue every simulated action goes through.

Time is a float of seconds starting at 0.0; nothing here reads a real clock. The queue is
a heap of ``(time, seq, action, args)``: the sequence number, taken from a counter at push
time, breaks ties between actions due at the same instant, so two runs with the same seed
pop actions in exactly the same order (no comparison ever reaches `action`).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import Any

__all__ = ["EventQueue", "VirtualClock"]

Action = Callable[..., None]


class VirtualClock:
    """Monotonic virtual time; only the event loop advances it."""

    __slots__ = ("now",)

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def advance_to(self, t: float) -> None:
        """Move time forward to `t`; moving backwards is a simulator bug."""
        if t < self.now:
            raise RuntimeError(f"virtual time would go backwards: {t} < {self.now}")
        self.now = t


class EventQueue:
    """A heap of pending actions ordered by (time, insertion sequence)."""

    __slots__ = ("_counter", "_heap")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Action, tuple[Any, ...]]] = []
        self._counter = itertools.count()

    def push(self, t: float, action: Action, *args: Any) -> None:
        """Schedule `action(*args)` at virtual time `t`."""
        heapq.heappush(self._heap, (t, next(self._counter), action, args))

    def run_until(self, t_end: float, clock: VirtualClock) -> int:
        """Run every action due at or before `t_end` in order; returns how many ran.

        The clock advances to each action's time before it runs (and refuses to go back);
        actions may push new ones, which run in this call too if they are due.
        """
        heap = self._heap
        pop = heapq.heappop
        advance = clock.advance_to
        steps = 0
        while heap and heap[0][0] <= t_end:
            t, _, action, args = pop(heap)
            advance(t)
            action(*args)
            steps += 1
        return steps

    def __len__(self) -> int:
        return len(self._heap)
