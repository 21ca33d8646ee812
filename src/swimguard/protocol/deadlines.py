"""The core's single timer table: one deadline per key, earliest first.

Keys are timer values (`protocol.timers`: `PROBE_TICK`, `SuspicionTimeout(name)`,
`StreamTimeout(id)`...).
Setting a key again replaces its deadline; stale heap entries are skipped
lazily, so `set`, `cancel` and `next_deadline` are O(log n) amortised.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Hashable
from typing import Generic, TypeVar

__all__ = ["Deadlines"]

K = TypeVar("K", bound=Hashable)


class Deadlines(Generic[K]):
    """Deadline per key with ordered expiry."""

    __slots__ = ("_at", "_counter", "_heap")

    def __init__(self) -> None:
        self._at: dict[K, float] = {}
        self._heap: list[tuple[float, int, K]] = []
        self._counter = itertools.count()

    def __len__(self) -> int:
        return len(self._at)

    def __contains__(self, key: K) -> bool:
        return key in self._at

    def get(self, key: K) -> float | None:
        """The deadline of `key`, if set."""
        return self._at.get(key)

    def set(self, key: K, when: float) -> None:
        """Arm (or re-arm) `key` at `when`."""
        if self._at.get(key) == when:
            return
        self._at[key] = when
        heapq.heappush(self._heap, (when, next(self._counter), key))
        if len(self._heap) > 64 and len(self._heap) > 4 * len(self._at):
            self._compact()

    def cancel(self, key: K) -> None:
        """Disarm `key` (no-op if unset)."""
        self._at.pop(key, None)

    def next_deadline(self) -> float | None:
        """Earliest armed deadline."""
        heap = self._heap
        while heap:
            when, _, key = heap[0]
            if self._at.get(key) == when:
                return when
            heapq.heappop(heap)
        return None

    def pop_due(self, *, now: float) -> K | None:
        """Remove and return the earliest key due at `now`, or None."""
        heap = self._heap
        while heap:
            when, _, key = heap[0]
            if self._at.get(key) != when:
                heapq.heappop(heap)
                continue
            if when > now:
                return None
            heapq.heappop(heap)
            del self._at[key]
            return key
        return None

    def keys(self) -> list[K]:
        """Armed keys (for inspection)."""
        return list(self._at)

    def _compact(self) -> None:
        self._heap = [(w, c, k) for (w, c, k) in self._heap if self._at.get(k) == w]
        heapq.heapify(self._heap)
