"""Measurements taken from a simulation: false positives, detection latency, load, views.

Definitions (used by the Lifeguard experiment and documented in its README section):

- A *failure declaration* is a `MemberFailed` event a node publishes while handling its own
  timer, i.e. its suspicion timeout ran out. Failures it only learns by gossip or push/pull
  are *observations*. Declarations are what the Lifeguard paper counts as FP events when
  the declared member was in fact running.
- `fp_total`: false declarations; `fp_healthy`: those about a member that was never slowed;
  `fp_at_healthy`: those made by a member that was never slowed; `fp_observed`: every false
  `MemberFailed` observation at every member (a declaration spreading to N-1 peers counts N-1);
  `fp_deaths`: distinct false deaths, i.e. (member, incarnation) pairs that at least one
  member declared dead while the member was running. Several members whose suspicion timers
  for the same rumour run out count once here: this is how often a running member was killed.
- Each false declaration is also put in exactly one class by what the declared member was
  doing during the declarer's suspicion window (from the declarer's own `MemberSuspected` to
  its `MemberFailed`; its length T is the suspicion timeout that was actually used):
  `fp_never_slowed` (never slowed at all; equals `fp_healthy`), `fp_responsive` (slowed at
  some time, but every input that reached it in the window was read within T: it could have
  refuted, a true false positive) and `fp_unresponsive` (some input in the window waited T or
  longer: effectively unresponsive for as long as the declarer waited, a defensible
  declaration). Input lag is what the simulator drew for each datagram and stream segment.
- Detection of a real crash at time c: `first` = first `MemberFailed` about it anywhere,
  `full` = the moment the last member that was running at c (and still is) has one.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Iterable

from swimguard.protocol.events import Event, MemberFailed, MemberLeft, MemberSuspected
from swimguard.protocol.members import MemberState
from swimguard.sim.cluster import SimCluster, SimMember

__all__ = ["CrashRecord", "FailureMetrics", "LoadWindow", "median_or_nan", "member_report"]


def median_or_nan(values: Iterable[float]) -> float:
    """Median of `values`, NaN when empty."""
    data = [v for v in values if not math.isnan(v)]
    return statistics.median(data) if data else math.nan


@dataclasses.dataclass(slots=True)
class CrashRecord:
    """One real crash and who has noticed it."""

    name: str
    at: float
    watchers: list[str]
    seen: dict[str, float] = dataclasses.field(default_factory=dict)

    @property
    def first(self) -> float:
        """Seconds from crash to the first detection anywhere (NaN if none)."""
        return min(self.seen.values()) - self.at if self.seen else math.nan

    @property
    def full(self) -> float:
        """Seconds until every watcher knows (NaN if some never did)."""
        pending = [w for w in self.watchers if w not in self.seen]
        return max(self.seen.values()) - self.at if self.seen and not pending else math.nan


class FailureMetrics:
    """Cluster listener counting false positives and timing true detections."""

    def __init__(self, cluster: SimCluster, *, start: float = 0.0) -> None:
        self.cluster = cluster
        self.start = start
        self.fp_total = 0
        self.fp_healthy = 0
        self.fp_at_healthy = 0
        self.fp_observed = 0
        self.false_deaths: set[tuple[str, int]] = set()
        self.suspicions = 0
        self.false_suspicions = 0
        self.crashes: dict[str, CrashRecord] = {}
        self.fp_log: list[tuple[float, str, str]] = []
        self.fp_responsive = 0
        self.fp_unresponsive = 0
        # (observer, subject) -> when the observer last started suspecting the subject.
        self._suspected_at: dict[tuple[str, str], float] = {}

    def crash(self, name: str) -> None:
        """Crash `name` in the cluster and start timing its detection."""
        cluster = self.cluster
        cluster.crash(name)
        watchers = [m.name for m in cluster.live()]
        self.crashes[name] = CrashRecord(name, cluster.now, watchers)

    def on_events(self, now: float, member: SimMember, events: list[Event], cause: str) -> None:
        """Classify every failure/suspicion event."""
        if now < self.start:
            return
        by_name = self.cluster.by_name
        for event in events:
            kind = type(event)
            if kind is MemberFailed:
                subject_name = event.member.name  # type: ignore[union-attr]
                subject = by_name.get(subject_name)
                if subject is None:
                    continue
                if subject.up:
                    self.fp_observed += 1
                    if cause == "timer":
                        self.fp_total += 1
                        self.fp_log.append((now, member.name, subject_name))
                        self.false_deaths.add(
                            (subject_name, event.member.incarnation)  # type: ignore[union-attr]
                        )
                        if not subject.ever_slow:
                            self.fp_healthy += 1
                        else:
                            self._classify(now, member.name, subject)
                        if not member.ever_slow:
                            self.fp_at_healthy += 1
                else:
                    record = self.crashes.get(subject_name)
                    if record is not None and member.name not in record.seen:
                        record.seen[member.name] = now
            elif kind is MemberLeft:
                record = self.crashes.get(event.member.name)  # type: ignore[union-attr]
                if record is not None and member.name not in record.seen:
                    record.seen[member.name] = now
            elif kind is MemberSuspected:
                self.suspicions += 1
                subject_name = event.member.name  # type: ignore[union-attr]
                self._suspected_at[(member.name, subject_name)] = now
                subject = by_name.get(subject_name)
                if subject is not None and subject.up:
                    self.false_suspicions += 1

    def _classify(self, now: float, observer: str, subject: SimMember) -> None:
        """Responsive or unresponsive: the subject's longest input wait vs the timeout used."""
        # Without a suspicion seen (not expected), judge the whole measured span.
        since = self._suspected_at.get((observer, subject.name), self.start)
        if subject.max_input_lag(since, now) >= now - since:
            self.fp_unresponsive += 1
        else:
            self.fp_responsive += 1

    @property
    def fp_never_slowed(self) -> int:
        """False declarations about members never slowed (the first class; `fp_healthy`)."""
        return self.fp_healthy

    @property
    def fp_deaths(self) -> int:
        """Distinct false deaths: (member, incarnation) pairs declared dead while running."""
        return len(self.false_deaths)

    def finish(self) -> None:
        """Drop watchers that died before noticing (they cannot complete a detection)."""
        for record in self.crashes.values():
            record.watchers = [
                w for w in record.watchers if self.cluster.by_name[w].up or w in record.seen
            ]

    def detect_first(self) -> float:
        """Median first-detection latency over the crashes (NaN if none detected)."""
        return median_or_nan(r.first for r in self.crashes.values())

    def detect_full(self) -> float:
        """Median full-detection latency over the crashes (NaN if none completed)."""
        return median_or_nan(r.full for r in self.crashes.values())


class LoadWindow:
    """Messages and bytes sent per running member per second over a window."""

    def __init__(self, cluster: SimCluster) -> None:
        self.cluster = cluster
        self.t0 = cluster.now
        self.msgs0 = sum(m.msgs_sent for m in cluster.members)
        self.bytes0 = sum(m.bytes_sent for m in cluster.members)

    def rates(self) -> tuple[float, float]:
        """(messages, bytes) per member-second since the window opened."""
        cluster = self.cluster
        span = cluster.now - self.t0
        members = max(1, len(cluster.live()))
        if span <= 0:
            return (0.0, 0.0)
        msgs = sum(m.msgs_sent for m in cluster.members) - self.msgs0
        sent = sum(m.bytes_sent for m in cluster.members) - self.bytes0
        return (msgs / span / members, sent / span / members)


def member_report(cluster: SimCluster) -> list[dict[str, object]]:
    """One row per member: its state, and what its node sees of everyone (by state)."""
    rows: list[dict[str, object]] = []
    for m in cluster.members:
        row: dict[str, object] = {
            "name": m.name,
            "state": m.state,
            "restarts": m.restarts,
            "slow": str(m.slow) if m.slow else "",
            "msgs_sent": m.msgs_sent,
            "bytes_sent": m.bytes_sent,
        }
        if m.up:
            counts = {state.name.lower(): 0 for state in MemberState}
            for mem in m.node.members():
                counts[mem.state.name.lower()] += 1
            row.update(counts)
            row["health_score"] = m.node.health_score
            row["drops"] = sum(m.node.drops.values())
        rows.append(row)
    return rows
