"""Rate-limited logging of dropped input.

A peer sending garbage (or the wrong key) can produce thousands of drops a
second; logging each would be a denial of service on the log. Instead the
agent calls `maybe_log(now, counters)` on its timer, and at most once per
interval one warning summarises what changed since the last one.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping


class DropLogger:
    """Logs per-reason deltas of drop counters, at most once per `interval` seconds."""

    def __init__(self, logger: logging.Logger, interval: float, name: str) -> None:
        self._logger = logger
        self._interval = interval
        self._name = name
        self._next_check = 0.0
        self._last: dict[str, int] = {}

    def due(self, now: float) -> bool:
        """True when `maybe_log` would look at the counters (saves building them)."""
        return now >= self._next_check

    def maybe_log(self, now: float, counters: Mapping[str, int]) -> bool:
        """Log a summary if the interval passed and counters grew; True if it logged."""
        if now < self._next_check:
            return False
        self._next_check = now + self._interval
        delta = {
            reason: count - self._last.get(reason, 0)
            for reason, count in counters.items()
            if count > self._last.get(reason, 0)
        }
        self._last = dict(counters)
        if not delta:
            return False
        summary = ", ".join(f"{reason}={n}" for reason, n in sorted(delta.items()))
        self._logger.warning("%s: dropped input in the last %.0fs: %s",
                             self._name, self._interval, summary)
        return True
