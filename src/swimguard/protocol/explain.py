"""`Explanation`: why a member is in its state, from the history the deciding parts kept.

Built on demand (`Node.explain`) from the member table, the running suspicion (its
timeout and deadline are live: loop lag postpones them) and `protocol.history`. Times are
the node's clock (`now` says which instant the explanation describes), so a reader can
say "3.2 s ago". `to_dict()` gives plain JSON types for an RPC or a log line.
"""

from __future__ import annotations

import dataclasses
import enum
import math

from swimguard.config import Config
from swimguard.protocol.history import (
    Confirmation,
    DeathStory,
    HealthChange,
    History,
    ProbeResult,
    StateChange,
    SuspicionEnd,
    SuspicionSource,
    SuspicionStory,
)
from swimguard.protocol.members import MemberState
from swimguard.protocol.suspicion import Suspicion, remaining_suspicion_time
from swimguard.protocol.table import MemberRecord

__all__ = ["Explanation", "SuspicionReport", "explain"]

JSON = None | bool | int | float | str | list["JSON"] | dict[str, "JSON"]


@dataclasses.dataclass(frozen=True, slots=True)
class SuspicionReport:
    """A suspicion (the running one, or the last one) and why its timeout has its value."""

    accuser: str
    source: SuspicionSource
    incarnation: int
    started: float
    confirmations: tuple[Confirmation, ...]
    wanted: int
    """`k`: confirmations that would shrink the timeout all the way to `min_timeout`."""
    members: int
    health_multiplier: int
    min_timeout: float
    max_timeout: float
    timeout: float
    """The timeout now (running) or when it ended, counted from `started`."""
    deadline: float | None
    """When it expires (running only; loop lag postpones it)."""
    ended: SuspicionEnd | None
    ended_at: float | None
    why: str


@dataclasses.dataclass(frozen=True, slots=True)
class Explanation:
    """What we know of one member and why (see the module docstring)."""

    name: str
    now: float
    is_self: bool
    state: MemberState
    incarnation: int
    since: float | None
    """When its state last changed (None: known in this state from the start)."""
    suspicion: SuspicionReport | None
    death: DeathStory | None
    probes: tuple[ProbeResult, ...]
    """The last result of each probe stage (direct, indirect, TCP) we ran against it."""
    changes: tuple[StateChange, ...]
    health_score: int | None = None
    """Ourselves only: our Lifeguard health score, and below the causes that moved it."""
    health_max: int | None = None
    at_max_since: float | None = None
    """Since when our score has been at its maximum (one point below still counts)."""
    fence_at: float | None = None
    """When we fence ourselves if the score stays up (`Config.self_fence_after`; None: off,
    or not at the maximum)."""
    health_changes: tuple[HealthChange, ...] = ()

    def to_dict(self) -> dict[str, JSON]:
        """Plain JSON types: enums as lower-case strings, tuples as lists, times and
        durations rounded to microseconds."""
        out = _jsonable(self)
        assert isinstance(out, dict)
        return out


def _jsonable(value: object) -> JSON:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):  # by name where the value is a wire number (MemberState)
        return value.value if isinstance(value.value, str) else value.name.lower()
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, float):  # microseconds are plenty for a human or a graph
        return round(value, 6) if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    raise TypeError(f"not JSON-able: {type(value).__name__}")


def explain(
    rec: MemberRecord,
    *,
    now: float,
    config: Config,
    history: History,
    running: Suspicion | None,
    is_self: bool,
    health_score: int,
    at_max_since: float | None,
) -> Explanation:
    """The explanation of `rec` (see `Explanation`)."""
    hist = history.get(rec.name)
    report = None
    if hist is not None and hist.suspicion is not None:
        report = _suspicion_report(hist.suspicion, running, config)
    probes = history.probes(rec.name)
    since = rec.state_change if math.isfinite(rec.state_change) else None
    base = Explanation(
        name=rec.name,
        now=now,
        is_self=is_self,
        state=rec.state,
        incarnation=rec.incarnation,
        since=since,
        suspicion=report,
        death=hist.death if hist is not None else None,
        probes=probes,
        changes=tuple(hist.changes) if hist is not None else (),
    )
    if not is_self:
        return base
    after = config.self_fence_after
    return dataclasses.replace(
        base,
        health_score=health_score,
        health_max=config.awareness_max_multiplier - 1,
        at_max_since=at_max_since,
        fence_at=at_max_since + after if after > 0 and at_max_since is not None else None,
        health_changes=tuple(history.health),
    )


def _suspicion_report(
    story: SuspicionStory, running: Suspicion | None, config: Config
) -> SuspicionReport:
    n = len(story.confirmations)
    k = story.k
    if story.ended is None and running is not None:
        timeout, deadline = running.timeout, running.deadline
        n = running.n  # exact even past the confirmations kept
    elif k >= 1:
        timeout = remaining_suspicion_time(min(n, k), k, 0.0, story.min_timeout, story.max_timeout)
        deadline = None
    else:
        timeout, deadline = story.min_timeout, None
    return SuspicionReport(
        accuser=story.accuser,
        source=story.source,
        incarnation=story.incarnation,
        started=story.started,
        confirmations=tuple(story.confirmations),
        wanted=k,
        members=story.members,
        health_multiplier=story.health_multiplier,
        min_timeout=story.min_timeout,
        max_timeout=story.max_timeout,
        timeout=timeout,
        deadline=deadline,
        ended=story.ended,
        ended_at=story.ended_at,
        why=_why(story, n, timeout, config),
    )


def _why(story: SuspicionStory, n: int, timeout: float, config: Config) -> str:
    scale = f"max(1, log10({story.members}))"
    text = (
        f"min {story.min_timeout:g}s = suspicion_mult {config.suspicion_mult}"
        f" x {scale} x probe_interval {config.probe_interval:g}s"
        f" x health multiplier {story.health_multiplier}"
    )
    k = story.k
    if k < 1:
        return text + f"; no confirmations wanted (k=0): timeout = min = {timeout:g}s"
    return text + (
        f"; max {story.max_timeout:g}s = suspicion_max_timeout_mult"
        f" {config.suspicion_max_timeout_mult} x min; {n} of k={k} confirmations:"
        f" timeout = max - (max - min) x ln({n}+1)/ln({k}+1) = {timeout:g}s"
    )
