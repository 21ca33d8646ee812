"""Join-time sync: when a joiner runs its first periodic push/pull (a swimguard extension).

memberlist runs a new member's first periodic push/pull at a random time within
`push_pull_interval` (30 s on a LAN), the next ones every scaled interval (150 s at N=500).
In a mass join that leaves gaps nothing repairs for minutes: the seed's table lacks whoever
joined just before us, and members that joined early miss some later joiners whose alive
gossip ran out of retransmits (simulated: bench/mass_join.py, docs/research/mass-join.md).

The rule, `Config.join_sync_delay` = D: once a join succeeded, our first periodic push/pull
waits until our member table has not changed size for D seconds (a storm of joins has
passed, so the peer we pick has heard of everyone), and comes at the latest one unscaled
`push_pull_interval` after the join; then the period is memberlist's again. It *moves* the
first push/pull, it adds none, so a join storm costs about the bytes of memberlist's rules.
On the wire it is a plain push/pull (join=False), which serf and memberlist answer.

`JoinSync` holds the pending sync and decides; `Streams` owns the push/pull timer and asks.
"""

from __future__ import annotations

__all__ = ["JoinSync"]


class JoinSync:
    """The join-time sync waiting to run, if any; times are the caller's clock."""

    __slots__ = ("_cap", "_delay", "_interval", "_size")

    def __init__(self, delay: float, interval: float) -> None:
        self._delay = delay
        self._interval = interval
        self._size: int | None = None  # the table size at the last look; None: nothing pending
        self._cap = 0.0

    @property
    def pending(self) -> bool:
        """A sync is scheduled and has not run yet."""
        return self._size is not None

    def joined(self, *, now: float, table_size: int) -> float | None:
        """A join succeeded at `now`: when the push/pull timer should fire next, or None
        (the extension is off, or periodic push/pull is: the timer must not be armed)."""
        if self._delay <= 0 or self._interval <= 0:
            return None
        if self._size is None:  # a second join while one is pending keeps the first cap
            self._cap = now + self._interval
        self._size = table_size
        return min(now + self._delay, self._cap)

    def tick(self, *, now: float, table_size: int, jitter: float) -> float | None:
        """The push/pull timer fired: None to push/pull now (and forget the sync), or the
        time to look again because the table is still changing (`jitter` in [0, 1) spreads
        the members of one storm, which would otherwise all sync at once)."""
        size = self._size
        if size is None:
            return None
        if table_size != size and now < self._cap:
            self._size = table_size
            return min(now + self._delay * (1.0 + jitter / 2), self._cap)
        self._size = None
        return None
