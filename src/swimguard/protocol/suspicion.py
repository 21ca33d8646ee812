"""Lifeguard dynamic suspicion timeout (LHA-Suspicion, memberlist `suspicion.go`).

A suspicion starts at `max` (or `min` when no confirmations are expected, k < 1)
and shrinks towards `min` as `k` independent confirmations arrive:
`timeout(c) = max(min, max - (max - min) * ln(c + 1) / ln(k + 1))`, floored to
milliseconds. The originator counts as already seen; duplicates and anything
past `k` are ignored. The class is pure: the owner reads `deadline` and re-arms
its timer when `confirm()` returns True.
"""

from __future__ import annotations

import math

__all__ = ["Suspicion", "remaining_suspicion_time"]


def remaining_suspicion_time(n: int, k: int, elapsed: float, min_: float, max_: float) -> float:
    """Time left after `elapsed` seconds with `n` confirmations (may be negative)."""
    frac = math.log(n + 1.0) / math.log(k + 1.0)
    raw = max_ - frac * (max_ - min_)
    timeout = math.floor(1000.0 * raw) / 1000.0
    timeout = max(timeout, min_)
    return timeout - elapsed


class Suspicion:
    """Timer state for one suspected member."""

    __slots__ = ("confirmations", "k", "max", "min", "n", "start", "timeout")

    def __init__(self, from_: str, k: int, min_: float, max_: float, *, now: float) -> None:
        self.k = k
        self.min = min_
        self.max = max_
        self.n = 0
        self.start = now
        self.confirmations: set[str] = {from_}
        self.timeout = max_ if k >= 1 else min_

    @property
    def deadline(self) -> float:
        """When the suspicion expires (absolute time)."""
        return self.start + self.timeout

    def confirm(self, from_: str) -> bool:
        """Count `from_` as an independent confirmation; True if it was new information."""
        if self.n >= self.k or from_ in self.confirmations:
            return False
        self.confirmations.add(from_)
        self.n += 1
        self.timeout = remaining_suspicion_time(self.n, self.k, 0.0, self.min, self.max)
        return True
