"""Invariant checkers for any simulation: attach, run, and they raise on the first violation.

Each checker is a cluster listener that watches the Member snapshots carried by the events
nodes publish (so checking costs O(1) per event, not a scan of every member table):

- `IncarnationMonotonic`: what one running node believes about a member's incarnation never
  goes down (a restarted node is a new observer; a member it may have reaped is new to it).
- `NoResurrection`: once an observer has seen a member dead or left at incarnation i, it may
  only see it alive again at an incarnation above i.
- `BoundedQueues` (polled): in-flight queue, per-node member tables and drop counters stay
  under explicit bounds.
- `check_converged`: every running node sees every running member alive and no crashed or
  departed member alive (call it after a heal, once the dust has had time to settle).

Violations raise `InvariantViolation`, whose message carries the seed and the replay command.
"""

from __future__ import annotations

from swimguard.protocol.events import (
    Event,
    MemberFailed,
    MemberJoined,
    MemberLeft,
    MemberSuspected,
    MemberUpdated,
)
from swimguard.protocol.members import MemberState
from swimguard.sim.cluster import SimCluster, SimMember

__all__ = [
    "BoundedQueues",
    "IncarnationMonotonic",
    "InvariantViolation",
    "NoResurrection",
    "attach_all",
    "check_converged",
    "convergence_gaps",
    "missing_alive_pairs",
]

_MEMBER_EVENTS = (MemberJoined, MemberUpdated, MemberSuspected, MemberFailed, MemberLeft)


class InvariantViolation(AssertionError):
    """A simulation broke an invariant; the message says how to replay it."""


def _fail(cluster: SimCluster, what: str) -> InvariantViolation:
    hint = cluster.replay_hint or f"(no replay command recorded; seed={cluster.seed})"
    return InvariantViolation(
        f"invariant violated at t={cluster.now:.3f}s: {what}\n"
        f"  seed={cluster.seed}\n  replay: {hint}"
    )


class IncarnationMonotonic:
    """Incarnations seen by one node process about one member never decrease.

    Except after a reap: a node forgets a member `forget_after` seconds (the config's
    `gossip_to_the_dead_time`) after seeing it dead or left, as memberlist does, and then
    stale gossip may introduce it again as new at any incarnation.
    """

    def __init__(self, cluster: SimCluster, forget_after: float = 30.0) -> None:
        self.cluster = cluster
        self.forget_after = forget_after
        self.seen: dict[tuple[int, int, str], int] = {}
        self.buried_since: dict[tuple[int, int, str], float] = {}
        self.checked = 0

    def on_events(self, now: float, member: SimMember, events: list[Event], cause: str) -> None:
        """Check every member snapshot in `events`."""
        for event in events:
            if isinstance(event, _MEMBER_EVENTS):
                subject = event.member
                key = (member.index, member.epoch, subject.name)
                previous = self.seen.get(key, -1)
                dies = isinstance(event, (MemberFailed, MemberLeft))
                buried = self.buried_since.get(key)
                if (
                    buried is not None
                    and isinstance(event, MemberJoined)
                    and now - buried > self.forget_after
                ):
                    previous = -1  # possibly reaped: a new member to this node
                self.checked += 1
                if subject.incarnation < previous:
                    raise _fail(
                        self.cluster,
                        f"{member.name} saw {subject.name} go from incarnation {previous} "
                        f"to {subject.incarnation} ({type(event).__name__})",
                    )
                self.seen[key] = subject.incarnation
                if dies:
                    self.buried_since.setdefault(key, now)
                else:
                    self.buried_since.pop(key, None)


class NoResurrection:
    """A member seen dead/left at incarnation i comes back alive only with incarnation > i.

    Only while the observer still remembers the death: after `forget_after` seconds (the
    config's `gossip_to_the_dead_time`) a node may reap the record, and a reaped member
    that shows up again is simply new to it, as in memberlist.
    """

    def __init__(self, cluster: SimCluster, forget_after: float = 30.0) -> None:
        self.cluster = cluster
        self.forget_after = forget_after
        self.buried: dict[tuple[int, int, str], tuple[int, float]] = {}
        self.checked = 0

    def on_events(self, now: float, member: SimMember, events: list[Event], cause: str) -> None:
        """Track deaths and check rebirths."""
        for event in events:
            if isinstance(event, (MemberFailed, MemberLeft)):
                subject = event.member
                key = (member.index, member.epoch, subject.name)
                self.buried[key] = (subject.incarnation, now)
            elif isinstance(event, MemberJoined):
                subject = event.member
                key = (member.index, member.epoch, subject.name)
                grave = self.buried.pop(key, None)
                if grave is None or now - grave[1] > self.forget_after:
                    continue
                dead_at = grave[0]
                self.checked += 1
                if subject.incarnation <= dead_at:
                    raise _fail(
                        self.cluster,
                        f"{member.name} resurrected {subject.name} at incarnation "
                        f"{subject.incarnation} after seeing it dead at {dead_at}",
                    )


class BoundedQueues:
    """Polled bounds: call `check()` (e.g. every few virtual seconds via `cluster.at`)."""

    def __init__(
        self,
        cluster: SimCluster,
        *,
        max_in_flight: int | None = None,
        max_members_factor: float = 1.0,
    ) -> None:
        self.cluster = cluster
        self.max_in_flight = max_in_flight
        self.max_members_factor = max_members_factor
        self.peak_in_flight = 0

    def check(self) -> None:
        """Raise if the event queue or any node's member table outgrew its bound."""
        cluster = self.cluster
        names = len(cluster.members)
        # Each member has at most one timer, its in-flight datagrams and stream segments: a
        # generous per-member budget catches unbounded growth (a packet storm) quickly.
        bound = self.max_in_flight if self.max_in_flight is not None else 2000 * max(names, 1)
        in_flight = len(cluster.queue)
        self.peak_in_flight = max(self.peak_in_flight, in_flight)
        if in_flight > bound:
            raise _fail(cluster, f"{in_flight} queued actions exceed the bound {bound}")
        for m in cluster.live():
            known = len(m.node.members())
            if known > names * self.max_members_factor:
                raise _fail(cluster, f"{m.name} knows {known} members but only {names} exist")

    def every(self, interval: float, until: float) -> None:
        """Schedule `check()` every `interval` seconds up to `until`."""
        t = self.cluster.now + interval
        while t <= until:
            self.cluster.at(t, self.check)
            t += interval


def convergence_gaps(cluster: SimCluster) -> list[str]:
    """Disagreements between the running nodes' views and reality (empty when converged)."""
    gaps: list[str] = []
    live = cluster.live()
    live_names = [m.name for m in live]
    gone = [m.name for m in cluster.members if not m.up]
    for m in live:
        view = {mem.name: mem.state for mem in m.node.members()}
        for name in live_names:
            state = view.get(name)
            if state is not MemberState.ALIVE:
                gaps.append(f"{m.name} sees {name} as {state.name if state else 'unknown'}")
        for name in gone:
            state = view.get(name)
            if state is MemberState.ALIVE:
                gaps.append(f"{m.name} still sees departed {name} as ALIVE")
    return gaps


def missing_alive_pairs(cluster: SimCluster) -> int:
    """(running member, running member) pairs where the first does not list the second
    alive: 0 once converged. Cheaper than `convergence_gaps` (no snapshots, no text) for
    checking a large cluster often, and blind to departed members still listed alive."""
    live = cluster.live()
    n = len(live)
    missing = 0
    for m in live:
        count_by_state = getattr(m.node, "count_by_state", None)  # `Node`'s, not NodeAPI's
        if callable(count_by_state):
            alive = int(count_by_state()[MemberState.ALIVE])
        else:
            alive = sum(1 for mem in m.node.members() if mem.state is MemberState.ALIVE)
        missing += max(0, n - alive)
    return missing


def check_converged(cluster: SimCluster, *, limit: int = 10) -> None:
    """Raise `InvariantViolation` listing (up to `limit`) disagreements, if any."""
    gaps = convergence_gaps(cluster)
    if gaps:
        more = f" (+{len(gaps) - limit} more)" if len(gaps) > limit else ""
        raise _fail(cluster, "not converged: " + "; ".join(gaps[:limit]) + more)


def attach_all(
    cluster: SimCluster, forget_after: float = 30.0
) -> tuple[IncarnationMonotonic, NoResurrection]:
    """Attach the event-driven checkers to `cluster` and return them.

    `forget_after` is the nodes' `gossip_to_the_dead_time` (see `IncarnationMonotonic`).
    """
    checkers = (IncarnationMonotonic(cluster, forget_after), NoResurrection(cluster, forget_after))
    for checker in checkers:
        cluster.add_listener(checker)
    return checkers
