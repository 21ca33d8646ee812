"""Slow members, as the Lifeguard paper injects them.

A slow member still runs the real core, but everything it has to process arrives late: each
inbound datagram or stream segment waits a delay D before `receive_datagram`/`stream_*` is
called, and (unless `timers=False`) each timer fires D' after its deadline, D and D' drawn
independently from `delay`. Independent draws are what makes a slow member miss acks that
did arrive in time and let its suspicion timers run out before a refutation waiting in its
queue is read, which is the failure mode Lifeguard targets. With `fifo=True` inputs are never
reordered among themselves (a single processing queue); stream segments are always kept in order.
"""

from __future__ import annotations

import dataclasses

from swimguard.sim.distributions import Distribution, parse_distribution

__all__ = ["SlowSpec", "parse_slow"]


@dataclasses.dataclass(frozen=True, slots=True)
class SlowSpec:
    """How late a slow member processes inputs and timers."""

    delay: Distribution
    timers: bool = True
    fifo: bool = True

    def __str__(self) -> str:
        flags = ("" if self.timers else ",notimers") + ("" if self.fifo else ",nofifo")
        return f"{self.delay}{flags}"


def parse_slow(text: str) -> SlowSpec:
    """Parse ``DIST[,notimers][,nofifo]``, e.g. ``exp:2`` or ``fixed:1.5,notimers``."""
    parts = text.split(",")
    flags = []
    while parts and parts[-1] in ("notimers", "nofifo"):
        flags.append(parts.pop())
    return SlowSpec(
        delay=parse_distribution(",".join(parts)),
        timers="notimers" not in flags,
        fifo="nofifo" not in flags,
    )
