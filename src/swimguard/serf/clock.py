"""Serf's Lamport clock."""

from __future__ import annotations

from typing import Final

__all__ = ["LamportClock"]

_U64: Final = (1 << 64) - 1


class LamportClock:
    """A Lamport clock with Serf's semantics (starts at 0; Serf increments it once at start)."""

    __slots__ = ("_counter",)

    def __init__(self, start: int = 0) -> None:
        self._counter = start

    def time(self) -> int:
        """Current value."""
        return self._counter

    def increment(self) -> int:
        """Advance by one and return the new value."""
        self._counter = min(self._counter + 1, _U64)
        return self._counter

    def witness(self, t: int) -> None:
        """Raise the clock past `t` if `t` is not older than it (Go: `t >= cur` -> `t + 1`)."""
        if t >= self._counter:
            self._counter = min(t + 1, _U64)
