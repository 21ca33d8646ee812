"""What the failure detector decided and why: bounded per-member history, for `explain`.

The parts that make a decision record it here as they make it, with the facts that
decided it: `Membership` (suspicions, their confirmations and how they ended, deaths),
`Prober` (the last direct, indirect and TCP probe result per member) and `Awareness`
(each change of our own health score and its cause). Nothing here decides anything; it
is read by `protocol.explain` to answer "why is this member in this state".

Memory is bounded twice: per member (a few records, at most `MAX_CONFIRMATIONS`
confirmations, the last `MAX_CHANGES` state changes) and in total (at most
`max_members` members have history; recording a new one forgets the one recorded
longest ago). Every string kept is a member name the recording part already checked.
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
    "StateChange",
    "SuspicionEnd",
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
    """What we recorded about one member."""

    __slots__ = ("changes", "death", "probes", "suspicion")

    def __init__(self) -> None:
        self.suspicion: SuspicionStory | None = None
        """The running suspicion, or the last one."""
        self.death: DeathStory | None = None
        self.probes: dict[ProbeKind, ProbeResult] = {}
        self.changes: collections.deque[StateChange] = collections.deque(maxlen=MAX_CHANGES)


class History:
    """Per-member history for at most `max_members` members, plus our health's causes."""

    __slots__ = ("_members", "health", "max_members")

    def __init__(self, max_members: int) -> None:
        if max_members < 0:
            raise ValueError(f"max_members must be >= 0, got {max_members}")
        self.max_members = max_members
        self._members: collections.OrderedDict[str, MemberHistory] = collections.OrderedDict()
        self.health: collections.deque[HealthChange] = collections.deque(
            maxlen=MAX_HEALTH_CHANGES
        )

    def __len__(self) -> int:
        return len(self._members)

    def get(self, name: str) -> MemberHistory | None:
        """The history of `name`, if kept."""
        return self._members.get(name)

    def of(self, name: str) -> MemberHistory | None:
        """The history to record into for `name` (made, and the oldest forgotten, as needed);
        None when history is off (`max_members == 0`)."""
        members = self._members
        hist = members.get(name)
        if hist is not None:
            members.move_to_end(name)
            return hist
        if self.max_members == 0:
            return None
        while len(members) >= self.max_members:
            members.popitem(last=False)
        hist = members[name] = MemberHistory()
        return hist

    def state_changed(self, name: str, state: MemberState, incarnation: int, *,
                      now: float) -> None:
        hist = self.of(name)
        if hist is not None:
            hist.changes.append(StateChange(state, incarnation, now))

    def probed(self, name: str, result: ProbeResult) -> None:
        hist = self.of(name)
        if hist is not None:
            hist.probes[result.kind] = result

    def health_changed(self, cause: HealthCause, delta: int, score: int, *, now: float) -> None:
        self.health.append(HealthChange(cause, delta, score, now))
