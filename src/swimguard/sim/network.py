"""The virtual network: per-link latency, loss, duplication, one-way blocks and partitions.

Members are identified here by their index in the cluster (a small int), so the hot path
does no string hashing. A datagram's fate is decided when it is sent: `datagram_delays`
returns no delay (lost), one, or two (duplicated). Streams (the TCP model) are reliable and
ordered, so they only ask `reachable` and `stream_delay`; a blocked stream simply stalls, and
the core's own stream deadline gives up on it, as it would on a real silent drop.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterable, Sequence

from swimguard.sim.distributions import Distribution, Uniform

__all__ = ["LinkModel", "NetworkStats", "SimNetwork"]


_LAN_LATENCY = Uniform(0.0005, 0.002)


@dataclasses.dataclass(frozen=True, slots=True)
class LinkModel:
    """How one directed link behaves. The default is a quiet LAN (0.5-2 ms one way)."""

    latency: Distribution = _LAN_LATENCY
    loss: float = 0.0
    duplicate: float = 0.0

    def __post_init__(self) -> None:
        for name in ("loss", "duplicate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"LinkModel.{name} must be in [0, 1], got {value}")


@dataclasses.dataclass(slots=True)
class NetworkStats:
    """Datagram counters since the network was created."""

    sent: int = 0
    lost: int = 0
    blocked: int = 0
    duplicated: int = 0
    unroutable: int = 0


class SimNetwork:
    """Decides delivery delays; it never calls a node (the cluster does)."""

    def __init__(self, rng: random.Random, default: LinkModel | None = None) -> None:
        self.rng = rng
        self.default = default or LinkModel()
        self.stats = NetworkStats()
        self._links: dict[tuple[int, int], LinkModel] = {}
        self._group: dict[int, int] = {}
        self._blocked: dict[tuple[int, int], bool] = {}
        # True while nothing deviates from `default`: lets the hot path skip every lookup.
        self._plain = True

    # -- configuration --------------------------------------------------------------------

    def set_default(self, model: LinkModel) -> None:
        """Replace the model of every link that has no override."""
        self.default = model

    def set_link(self, src: int, dst: int, model: LinkModel) -> None:
        """Override the directed link src -> dst."""
        self._links[(src, dst)] = model
        self._plain = False

    def clear_link(self, src: int, dst: int) -> None:
        """Remove an override of src -> dst."""
        self._links.pop((src, dst), None)
        self._refresh_plain()

    def partition(self, groups: Sequence[Iterable[int]]) -> None:
        """Split members into groups that cannot reach each other.

        Members not listed in any group share one extra group. A new call replaces the
        previous partition; `heal()` removes it.
        """
        self._group = {}
        for gid, group in enumerate(groups, start=1):
            for member in group:
                self._group[member] = gid
        self._refresh_plain()

    def heal(self) -> None:
        """Remove the partition (one-way blocks and link overrides stay)."""
        self._group = {}
        self._refresh_plain()

    def block(self, src: int, dst: int) -> None:
        """Drop everything from src to dst (one way); dst -> src is unaffected."""
        self._blocked[(src, dst)] = True
        self._plain = False

    def unblock(self, src: int, dst: int) -> None:
        """Undo `block(src, dst)`."""
        self._blocked.pop((src, dst), None)
        self._refresh_plain()

    def _refresh_plain(self) -> None:
        self._plain = not (self._links or self._group or self._blocked)

    # -- queries ----------------------------------------------------------------------------

    def reachable(self, src: int, dst: int) -> bool:
        """True when a packet from src can currently reach dst."""
        if self._plain:
            return True
        if self._group.get(src, 0) != self._group.get(dst, 0):
            return False
        return (src, dst) not in self._blocked

    def link(self, src: int, dst: int) -> LinkModel:
        """The model in force for src -> dst."""
        if self._plain:
            return self.default
        return self._links.get((src, dst), self.default)

    def datagram_delays(self, src: int, dst: int) -> tuple[float, ...]:
        """Delivery delays for one datagram: () when lost or blocked, two when duplicated."""
        self.stats.sent += 1
        if not self.reachable(src, dst):
            self.stats.blocked += 1
            return ()
        model = self.link(src, dst)
        rng = self.rng
        if model.loss and rng.random() < model.loss:
            self.stats.lost += 1
            return ()
        first = model.latency.sample(rng)
        if model.duplicate and rng.random() < model.duplicate:
            self.stats.duplicated += 1
            return (first, model.latency.sample(rng))
        return (first,)

    def stream_delay(self, src: int, dst: int) -> float | None:
        """One-way delay of a stream segment, or None if the link is cut (the stream stalls)."""
        if not self.reachable(src, dst):
            return None
        return self.link(src, dst).latency.sample(self.rng)
