"""The core's timers: one small frozen type per kind, used as keys of `Deadlines`.

A kind without a subject (probe tick, gossip round...) has one instance, the
constant below; a kind per subject (a suspicion per member, a relay per sequence
number, a stream per id) carries it, so arming the same subject again replaces
its deadline. `Node._fire` dispatches on these types with an exhaustive `match`.
"""

from __future__ import annotations

import dataclasses
from typing import Final

__all__ = [
    "GOSSIP_TICK",
    "LEAVE_TIMEOUT",
    "PROBE_INDIRECT",
    "PROBE_TICK",
    "PROBE_TIMEOUT",
    "PUSH_PULL_TICK",
    "SELF_FENCE",
    "GossipTick",
    "LeaveTimeout",
    "ProbeIndirect",
    "ProbeTick",
    "ProbeTimeout",
    "PushPullTick",
    "RelayTimeout",
    "SelfFence",
    "StreamTimeout",
    "SuspicionTimeout",
    "Timer",
]


@dataclasses.dataclass(frozen=True, slots=True)
class ProbeTick:
    """Start the next probe (every `probe_interval`, scaled by awareness)."""


@dataclasses.dataclass(frozen=True, slots=True)
class ProbeIndirect:
    """The direct ping went unanswered for `probe_timeout`: ask others, try TCP."""


@dataclasses.dataclass(frozen=True, slots=True)
class ProbeTimeout:
    """The probe's interval is over: suspect the target unless an ack came."""


@dataclasses.dataclass(frozen=True, slots=True)
class GossipTick:
    """One gossip round."""


@dataclasses.dataclass(frozen=True, slots=True)
class PushPullTick:
    """One periodic push/pull with a random member."""


@dataclasses.dataclass(frozen=True, slots=True)
class LeaveTimeout:
    """`leave()` stops waiting for its broadcast to go out."""


@dataclasses.dataclass(frozen=True, slots=True)
class SelfFence:
    """Our health score has been at its maximum for `Config.self_fence_after` seconds."""


@dataclasses.dataclass(frozen=True, slots=True)
class SuspicionTimeout:
    """The suspicion about `name` expired: declare it dead."""

    name: str


@dataclasses.dataclass(frozen=True, slots=True)
class RelayTimeout:
    """The indirect ping we relayed under our sequence number `seq` got no ack."""

    seq: int


@dataclasses.dataclass(frozen=True, slots=True)
class StreamTimeout:
    """Stream `stream_id` took longer than its deadline."""

    stream_id: int


Timer = (
    ProbeTick
    | ProbeIndirect
    | ProbeTimeout
    | GossipTick
    | PushPullTick
    | LeaveTimeout
    | SelfFence
    | SuspicionTimeout
    | RelayTimeout
    | StreamTimeout
)

PROBE_TICK: Final = ProbeTick()
PROBE_INDIRECT: Final = ProbeIndirect()
PROBE_TIMEOUT: Final = ProbeTimeout()
GOSSIP_TICK: Final = GossipTick()
PUSH_PULL_TICK: Final = PushPullTick()
LEAVE_TIMEOUT: Final = LeaveTimeout()
SELF_FENCE: Final = SelfFence()
