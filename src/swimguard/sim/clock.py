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

    __slots__ = ("counter", "heap")

    def __init__(self) -> None:
        self.heap: list[tuple[float, int, Action, tuple[Any, ...]]] = []
        # Hot paths may push `(t, next(counter), action, args)` onto `heap` directly.
        self.counter = itertools.count()

    def push(self, t: float, action: Action, *args: Any) -> None:
        """Schedule `action(*args)` at virtual time `t`."""
        heapq.heappush(self.heap, (t, next(self.counter), action, args))

    def pop(self) -> tuple[float, Action, tuple[Any, ...]]:
        """Remove and return the earliest action."""
        t, _, action, args = heapq.heappop(self.heap)
        return t, action, args

    def peek_time(self) -> float | None:
        """Time of the earliest action, or None when the queue is empty."""
        return self.heap[0][0] if self.heap else None

    def __len__(self) -> int:
        return len(self.heap)
