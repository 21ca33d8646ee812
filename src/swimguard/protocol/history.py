"""What the failure detector decided and why: bounded per-member history, for `explain`.

The parts that make a decision record it here as they make it, with the facts that
decided it: `Membership` (suspicions, their confirmations and how they ended, deaths),
`Prober` (the last direct, indirect and TCP probe result per member) and `Awareness`
(each change of our own health score and its cause). Nothing here decides anything; it
is read by `protocol.explain` to answer "why is this member in this state".

Memory is bounded twice: per member (a few records, at most `MAX_CONFIRMATIONS`
confirmations, the last `MAX_CHANGES` state changes) and in total (at most `max_members`
members have a story and as many have probe results; recording a new one forgets the one
recorded longest ago). Every string kept is a member name the recording part already
checked. A healthy member costs one probe result; a simulator running thousands of nodes
in one process pays that per node (set `Config.explain_members` lower there).
"""

from __future__ import annotations

import collections
import dataclasses
import enum
from typing import Final

from swimguard.protocol.members import MemberState

__all__ = [
    "MAX_CHANGES",
    "MAX_CONFIRMATIONS",
    "MAX_HEALTH_CHANGES",
    "Confirmation",
    "DeathStory",
    "HealthCause",
    "HealthChange",
    "History",
    "MemberHistory",
    "ProbeKind",
    "ProbeResult",
    "ProbeSlots",
    "StateChange",
    "SuspicionEnd",
    "SuspicionSource",
    "SuspicionStory",
]

MAX_CONFIRMATIONS: Final = 32
"""Confirmations kept per suspicion (Lifeguard counts at most `suspicion_mult - 2`, which a
config may set high; the count `n` stays exact past this)."""
MAX_CHANGES: Final = 8
"""State changes kept per member."""
MAX_HEALTH_CHANGES: Final = 32
"""Changes of our own health score kept."""


class ProbeKind(enum.Enum):
    """The stage of a probe that answered or stayed silent."""

    DIRECT = "direct"
    INDIRECT = "indirect"
    TCP = "tcp"


class HealthCause(enum.Enum):
    """Why our health score moved (see `protocol.awareness` for each rule)."""

    PROBE_OK = "probe_ok"
    PROBE_FAILED = "probe_failed"
    MISSED_NACKS = "missed_nacks"
    REFUTATION = "refutation"
    LOOP_LAG = "loop_lag"
    LAG_RECOVERED = "lag_recovered"
    APP_REPORT = "app_report"
    APP_WITHDRAWN = "app_withdrawn"


class SuspicionSource(enum.Enum):
    """How the accusation reached us."""

    PROBE = "probe"
    """Our own probe of the member failed (we are the accuser)."""
    GOSSIP = "gossip"
    """Another member's suspect message (its sender is the accuser)."""
    PUSH_PULL = "push_pull"
    """A push/pull listed it suspect or dead; we verify it ourselves (we are the accuser,
    as in memberlist)."""


class SuspicionEnd(enum.Enum):
    """How a suspicion ended."""

    REFUTED = "refuted"
    """The member announced a newer incarnation: alive."""
    EXPIRED = "expired"
    """Our timeout ran out: we declared it dead."""
    DEAD_NEWS = "dead_news"
    """Another member's dead (or the member's own leave) arrived first."""


@dataclasses.dataclass(frozen=True, slots=True)
class Confirmation:
    """An independent confirmation of a suspicion."""

    by: str
    at: float


@dataclasses.dataclass(slots=True)
class SuspicionStory:
    """One suspicion, from the accusation to its end, with what set its timeout."""

    accuser: str
    source: SuspicionSource
    incarnation: int
    started: float
    members: int
    """Cluster size `n` the minimum timeout was scaled to (`suspicion_mult * log10(n)`)."""
    health_multiplier: int
    """`score + 1` of our health when it started (1 when the timeout is not health-scaled)."""
    k: int
    """Confirmations Lifeguard wanted to shrink the timeout from `max_timeout` to `min_timeout`."""
    min_timeout: float
    max_timeout: float
    confirmations: list[Confirmation] = dataclasses.field(default_factory=list)
    ended: SuspicionEnd | None = None
    ended_at: float | None = None

    def confirm(self, by: str, *, now: float) -> None:
        if len(self.confirmations) < MAX_CONFIRMATIONS:
            self.confirmations.append(Confirmation(by, now))

    def end(self, how: SuspicionEnd, *, now: float) -> None:
        if self.ended is None:
            self.ended = how
            self.ended_at = now


@dataclasses.dataclass(frozen=True, slots=True)
class DeathStory:
    """Who declared a member dead (or that it left), and after which suspicion timeout."""

    state: MemberState
    declared_by: str
    incarnation: int
    at: float
    timeout: float | None
    """Our suspicion timeout when it was our own timer that expired; else None."""


@dataclasses.dataclass(frozen=True, slots=True)
class ProbeResult:
    """The outcome of one stage of a probe of the member."""

    kind: ProbeKind
    ok: bool
    at: float
    rtt: float | None
    """Seconds from the probe's start to the ack; None when it failed."""
    relays: int = 0
    """Indirect stage: members asked to ping for us."""
    expected_nacks: int = 0
    nacks: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class StateChange:
    """A member's state change as we applied it."""

    state: MemberState
    incarnation: int
    at: float


@dataclasses.dataclass(frozen=True, slots=True)
class HealthChange:
    """A change of our own health score."""

    cause: HealthCause
    delta: int
    score: int
    at: float


class MemberHistory:
    """The story we recorded about one member: its suspicion, death and state changes."""

    __slots__ = ("changes", "death", "suspicion")

    def __init__(self) -> None:
        self.suspicion: SuspicionStory | None = None
        """The running suspicion, or the last one."""
        self.death: DeathStory | None = None
        self.changes: list[StateChange] = []
        """The last `MAX_CHANGES` state changes, oldest first."""


ProbeSlots = tuple[ProbeResult | None, ProbeResult | None, ProbeResult | None]
"""The last result per `ProbeKind`, in its order (direct, indirect, TCP)."""
_NO_PROBES: ProbeSlots = (None, None, None)
_SLOT: Final = {kind: i for i, kind in enumerate(ProbeKind)}


class History:
    """Stories of at most `max_members` members, the last probe results of at most as many,
    and our health's recent changes.

    Stories and probe results are kept apart: probing every member in turn must not push
    out the story of the one that died. A member gets a story when it is first suspected or
    declared dead (a plain join is no story); later changes, alive again included, are
    added to it. Both are least-recently-recorded first out (plain dicts keep insertion
    order: recording again moves a member to the end).
    """

    __slots__ = ("_probes", "_stories", "health", "max_members")

    def __init__(self, max_members: int) -> None:
        if max_members < 0:
            raise ValueError(f"max_members must be >= 0, got {max_members}")
        self.max_members = max_members
        self._stories: dict[str, MemberHistory] = {}
        self._probes: dict[str, ProbeSlots] = {}
        self.health: collections.deque[HealthChange] = collections.deque(
            maxlen=MAX_HEALTH_CHANGES
        )

    def __len__(self) -> int:
        """Members with a story."""
        return len(self._stories)

    def get(self, name: str) -> MemberHistory | None:
        """The story of `name`, if kept."""
        return self._stories.get(name)

    def probes(self, name: str) -> tuple[ProbeResult, ...]:
        """The last result of each probe stage run against `name`, direct first."""
        return tuple(r for r in self._probes.get(name, _NO_PROBES) if r is not None)

    def of(self, name: str) -> MemberHistory | None:
        """The story to record into for `name` (made, and the oldest forgotten, as needed);
        None when history is off (`max_members == 0`)."""
        stories = self._stories
        hist = stories.pop(name, None)
        if hist is None:
            if self.max_members == 0:
                return None
            while len(stories) >= self.max_members:
                del stories[next(iter(stories))]
            hist = MemberHistory()
        stories[name] = hist
        return hist

    def state_changed(self, name: str, state: MemberState, incarnation: int, *,
                      now: float) -> None:
        if state is MemberState.ALIVE and name not in self._stories:
            return  # a join, or news of a member we have no story about
        hist = self.of(name)
        if hist is not None:
            changes = hist.changes
            if len(changes) >= MAX_CHANGES:
                del changes[0]
            changes.append(StateChange(state, incarnation, now))

    def probed(self, name: str, result: ProbeResult) -> None:
        probes = self._probes
        slots = probes.pop(name, None)
        if slots is None:
            if self.max_members == 0:
                return
            while len(probes) >= self.max_members:
                del probes[next(iter(probes))]
            slots = _NO_PROBES
        new = list(slots)
        new[_SLOT[result.kind]] = result
        probes[name] = (new[0], new[1], new[2])

    def health_changed(self, cause: HealthCause, delta: int, score: int, *, now: float) -> None:
        self.health.append(HealthChange(cause, delta, score, now))
