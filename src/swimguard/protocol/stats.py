"""Plain counters the protocol parts bump where things happen, read by a metrics exporter.

Why plain ints and not a metrics library: the core is pure (no IO, no global state) and
runs in the simulator with thousands of nodes, so a count has to cost one integer
increment. An exporter (`swimguard.aio.metrics`) reads these at scrape time; nothing
here knows about Prometheus. Names follow memberlist's telemetry where one exists.
"""

from __future__ import annotations

import bisect
import dataclasses

__all__ = ["DURATION_BUCKETS", "Histogram", "ProtocolStats", "TransportStats"]

DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds (seconds) for probe, push/pull and loop-lag durations: a LAN probe answers
in about a millisecond, a failed one lasts the (awareness-scaled) probe interval."""


class Histogram:
    """Counts of observations per fixed bucket: bounded memory whatever is observed.

    `counts[i]` is how many values fell in `(bounds[i-1], bounds[i]]`; the last slot
    holds values above every bound (Prometheus' `+Inf` bucket, before accumulation).
    """

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...] = DURATION_BUCKETS) -> None:
        if list(bounds) != sorted(set(bounds)):
            raise ValueError("histogram bounds must be strictly increasing")
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.count = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """Count one value (a bisect and three additions)."""
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.count += 1
        self.sum += value

    def cumulative(self) -> list[tuple[float, int]]:
        """`(upper bound, values <= bound)` per bucket, ending with `(inf, count)`."""
        out: list[tuple[float, int]] = []
        running = 0
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += n
            out.append((bound, running))
        return out


@dataclasses.dataclass(slots=True)
class ProtocolStats:
    """What the SWIM/Lifeguard core did, since the node started (monotonic counts)."""

    msg_alive: int = 0
    """Alive news applied (memberlist `msg.alive`): a new member, a newer incarnation."""
    msg_suspect: int = 0
    """Members marked suspect (memberlist `msg.suspect`)."""
    msg_dead: int = 0
    """Members marked dead or left (memberlist `msg.dead`)."""
    degraded_probe: int = 0
    """Probes started with an awareness-scaled (longer) interval (memberlist `degraded.probe`)."""
    degraded_timeout: int = 0
    """Suspicions that expired short of the confirmations Lifeguard wanted
    (memberlist `degraded.timeout`)."""
    suspicions_started: int = 0
    """Suspicions we started about another member."""
    suspicions_refuted: int = 0
    """Suspicions ended by the suspect's newer alive."""
    suspicions_confirmed: int = 0
    """Suspicions that expired: the member was declared dead."""
    refutations: int = 0
    """Times we refuted a suspicion (or death) of ourselves with a higher incarnation."""
    gossip_rounds: int = 0
    """Gossip rounds that had something to send."""
    probe_failed: int = 0
    """Probes that got no ack (direct, indirect or TCP) in time."""
    health_reports: int = 0
    """Application health reports (`Node.report_health`)."""
    probe_node: Histogram = dataclasses.field(default_factory=Histogram)
    """Probe durations, start to ack or failure (memberlist `probeNode`), seconds."""
    push_pull_node: Histogram = dataclasses.field(default_factory=Histogram)
    """Durations of our push/pulls that completed, seconds (memberlist `pushPullNode`)."""


@dataclasses.dataclass(slots=True)
class TransportStats:
    """What a driver moved over its sockets (memberlist's `udp.*` and `tcp.*` telemetry)."""

    udp_sent_bytes: int = 0
    udp_received_bytes: int = 0
    tcp_sent_bytes: int = 0
    tcp_accept: int = 0
    tcp_connect: int = 0
    loop_lag: Histogram = dataclasses.field(default_factory=Histogram)
    """Lateness of each timer callback, seconds (the loop-lag input of the health score)."""
