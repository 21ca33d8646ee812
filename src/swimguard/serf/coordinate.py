"""Vivaldi network coordinates, as Serf computes them (spec/serf-rpc.md §3.1).

Each member keeps a point in an 8-dimensional Euclidean space plus a `height` (the
member's own access-link delay) and an `adjustment` (a running correction for what the
Euclidean model cannot express). The estimated round-trip time between two members is
the distance between their coordinates, in seconds. Serf moves its own point a little on
every probe ack: towards a peer whose ack came back sooner than the coordinates predict,
away from one that took longer. Running the same rule with the same constants is what
lets `serf rtt` mix swimguard and Serf members in one estimate.

This module is pure: no clock (the rule has no time in it; round-trip times arrive as
numbers) and no module-level randomness (the client takes a seeded `random.Random`, used
only to pick a direction when two points coincide).
"""

from __future__ import annotations

import dataclasses
import enum
import math
import operator
import random
from collections.abc import Sequence
from typing import Final

__all__ = [
    "ABSURD_SECONDS",
    "MAX_RTT",
    "Coordinate",
    "CoordinateRejected",
    "VivaldiClient",
    "VivaldiConfig",
    "check_coordinate",
    "estimate_rtt",
]

ZERO_THRESHOLD: Final = 1.0e-6
"""Below this, a distance or an error total counts as zero (Serf's constant)."""

MAX_RTT: Final = 10.0
"""Serf refuses round-trip samples above 10 s (and below 0)."""

ABSURD_SECONDS: Final = 1000.0
"""Our bound on any component of a coordinate from the wire (Serf has none).

Serf drops round-trip samples above `MAX_RTT`, and gravity keeps its points near the
origin, so an honest coordinate stays within a few seconds. One a hundred times further
out than the largest usable sample can only come from a broken or hostile peer, and
storing it would drag our own point (and every estimate made from it) with it.
"""


@dataclasses.dataclass(frozen=True, slots=True)
class VivaldiConfig:
    """The Vivaldi constants; the defaults are Serf's (`coordinate.DefaultConfig`)."""

    dimensionality: int = 8
    error_max: float = 1.5
    """Ceiling (and starting value) of a coordinate's error estimate."""
    ce: float = 0.25
    """How fast the error estimate follows the observed wrongness."""
    cc: float = 0.25
    """How far one sample moves the point (scaled by our share of the total error)."""
    adjustment_window: int = 20
    """Samples of (rtt - raw distance) averaged into `adjustment`."""
    height_min: float = 10.0e-6
    latency_filter_size: int = 3
    """Round-trip samples kept per peer; their median is what Vivaldi sees."""
    gravity_rho: float = 150.0
    """Distance (s) at which the pull back to the origin equals one unit of force."""

    def __post_init__(self) -> None:
        if self.dimensionality < 1:
            raise ValueError("VivaldiConfig.dimensionality must be >= 1")
        if self.latency_filter_size < 1:
            raise ValueError("VivaldiConfig.latency_filter_size must be >= 1")
        if self.adjustment_window < 0:
            raise ValueError("VivaldiConfig.adjustment_window must be >= 0")


DEFAULT_CONFIG: Final = VivaldiConfig()


@dataclasses.dataclass(frozen=True, slots=True)
class Coordinate:
    """A network coordinate; distances are in seconds."""

    vec: tuple[float, ...]
    error: float
    adjustment: float
    height: float

    @classmethod
    def origin(cls, config: VivaldiConfig = DEFAULT_CONFIG) -> Coordinate:
        """A new member's coordinate: at the origin, with the largest error."""
        return cls(
            vec=(0.0,) * config.dimensionality,
            error=config.error_max,
            adjustment=0.0,
            height=config.height_min,
        )

    def is_finite(self) -> bool:
        """No component is NaN or infinite."""
        isfinite = math.isfinite
        return (all(map(isfinite, self.vec)) and isfinite(self.error)
                and isfinite(self.adjustment) and isfinite(self.height))

    def raw_distance_to(self, other: Coordinate) -> float:
        """Euclidean distance plus both heights, without the adjustments."""
        _check_dimensions(self, other)
        return _distance(self.vec, other.vec) + self.height + other.height

    def distance_to(self, other: Coordinate) -> float:
        """Estimated round-trip time to `other` (s).

        The adjustments are added only when the result stays positive: a large negative
        adjustment must not turn an estimate into nonsense.
        """
        raw = self.raw_distance_to(other)
        adjusted = raw + self.adjustment + other.adjustment
        return adjusted if adjusted > 0.0 else raw


def estimate_rtt(a: Coordinate, b: Coordinate) -> float:
    """Estimated round-trip time between the members at `a` and `b`, in seconds."""
    return a.distance_to(b)


class CoordinateRejected(enum.Enum):
    """Why a coordinate or a sample was not used; the value is the drop counter's name."""

    WRONG_DIMENSION = "coordinate_wrong_dimension"
    NOT_FINITE = "coordinate_not_finite"
    ABSURD = "coordinate_absurd"
    RTT_OUT_OF_RANGE = "coordinate_rtt_out_of_range"


def check_coordinate(
    coord: Coordinate, config: VivaldiConfig = DEFAULT_CONFIG
) -> CoordinateRejected | None:
    """Why `coord` (from a peer) must not be used, or None if it may.

    Serf checks the dimension and finiteness. We also refuse components beyond
    `ABSURD_SECONDS` and a negative error or height: a negative error would give the
    peer more than all the weight in our update (and could make our own error negative).
    """
    if len(coord.vec) != config.dimensionality:
        return CoordinateRejected.WRONG_DIMENSION
    if not coord.is_finite():
        return CoordinateRejected.NOT_FINITE
    # Finite and at least one component (the dimension is >= 1): max() is any() here.
    if max(map(abs, coord.vec)) > ABSURD_SECONDS or abs(coord.adjustment) > ABSURD_SECONDS:
        return CoordinateRejected.ABSURD
    if not (0.0 <= coord.error <= ABSURD_SECONDS and 0.0 <= coord.height <= ABSURD_SECONDS):
        return CoordinateRejected.ABSURD
    return None


def apply_force(
    config: VivaldiConfig,
    coord: Coordinate,
    force: float,
    other: Coordinate,
    rng: random.Random,
) -> Coordinate:
    """`coord` pushed by `force` (s) along the line from `other` (negative pulls).

    The height grows or shrinks in proportion, so that part of a mismatch lands on the
    members' access links rather than on their position. When the points coincide the
    direction is random and the height is left alone.
    """
    _check_dimensions(coord, other)
    unit, mag = _unit_vector_at(coord.vec, other.vec, rng)
    vec = tuple(v + u * force for v, u in zip(coord.vec, unit, strict=True))
    height = coord.height
    if mag > ZERO_THRESHOLD:
        height = (height + other.height) * force / mag + height
        height = max(height, config.height_min)
    return dataclasses.replace(coord, vec=vec, height=height)


class VivaldiClient:
    """Our own coordinate, moved by each (peer coordinate, round-trip time) sample.

    Keeps the per-peer latency filters and the adjustment window; `resets` counts the
    times the arithmetic produced a non-finite coordinate and we started over at the
    origin (Serf's `coordinate_resets`).
    """

    def __init__(self, config: VivaldiConfig = DEFAULT_CONFIG, *, rng: random.Random) -> None:
        self.config = config
        self._rng = rng
        self._origin = Coordinate.origin(config)
        self._coord = self._origin
        self._adjustment_samples = [0.0] * config.adjustment_window
        self._adjustment_index = 0
        self._samples: dict[str, list[float]] = {}
        self.resets = 0

    @property
    def coordinate(self) -> Coordinate:
        """Our current coordinate."""
        return self._coord

    def set_coordinate(self, coord: Coordinate) -> CoordinateRejected | None:
        """Replace our coordinate (e.g. one restored from a previous run) if it is sane."""
        problem = check_coordinate(coord, self.config)
        if problem is None:
            self._coord = coord
        return problem

    def forget(self, node: str) -> None:
        """Drop `node`'s round-trip samples (it left the cluster)."""
        self._samples.pop(node, None)

    @property
    def tracked(self) -> int:
        """Peers with round-trip samples."""
        return len(self._samples)

    def update(self, node: str, other: Coordinate, rtt: float) -> CoordinateRejected | None:
        """Take one sample: `node`, at `other`, answered after `rtt` seconds.

        Returns why the sample was refused (our coordinate is then unchanged), or None.
        """
        problem = check_coordinate(other, self.config)
        if problem is not None:
            return problem
        if not (0.0 <= rtt <= MAX_RTT):  # also refuses NaN
            return CoordinateRejected.RTT_OUT_OF_RANGE
        rtt = self._latency_filter(node, rtt)
        coord = self._step(other, rtt)
        if not coord.is_finite():
            self.resets += 1
            coord = self._origin
        self._coord = coord
        return None

    # -- the steps of one update ---------------------------------------------------------

    def _latency_filter(self, node: str, rtt: float) -> float:
        """The median of `node`'s last few samples: one slow ack does not move us."""
        samples = self._samples.setdefault(node, [])
        samples.append(rtt)
        if len(samples) > self.config.latency_filter_size:
            del samples[0]
        return sorted(samples)[len(samples) // 2]

    def _step(self, other: Coordinate, rtt: float) -> Coordinate:
        """Our coordinate after one (filtered) sample: the Vivaldi move, the adjustment
        window, then gravity, as Serf runs them.

        One pass over plain floats, building a single `Coordinate` at the end: this runs
        for every probe ack, and the step-by-step version (a frozen dataclass replaced
        four times, generators for each 8-vector) cost an idle agent a tenth of its CPU.
        The arithmetic is Serf's and stays in the same order, so results are bit for bit
        those of `apply_force` and `Coordinate.distance_to` applied step by step.
        """
        cfg = self.config
        coord = self._coord
        vec, height, error = coord.vec, coord.height, coord.error
        o_vec, o_height = other.vec, other.height

        # Vivaldi: move along the line from `other` by our share of the mismatch.
        mag = _distance(vec, o_vec)
        raw = mag + height + o_height
        adjusted = raw + coord.adjustment + other.adjustment
        dist = adjusted if adjusted > 0.0 else raw
        floored = max(rtt, ZERO_THRESHOLD)  # only here: the adjustment takes `rtt` as is
        wrongness = abs(dist - floored) / floored
        total_error = max(error + other.error, ZERO_THRESHOLD)
        # Our share of the combined uncertainty: a confident peer moves us more.
        weight = error / total_error
        error = cfg.ce * weight * wrongness + error * (1.0 - cfg.ce * weight)
        error = min(error, cfg.error_max)
        force = cfg.cc * weight * (floored - dist)
        vec, height = self._push(vec, height, o_vec, o_height, mag, force)

        # Adjustment: the running mean of what the Euclidean part cannot express.
        adjustment = coord.adjustment
        window = cfg.adjustment_window
        if window:
            samples = self._adjustment_samples
            samples[self._adjustment_index] = rtt - (_distance(vec, o_vec) + height + o_height)
            self._adjustment_index = (self._adjustment_index + 1) % window
            # Halved because both ends of a distance add their own adjustment.
            adjustment = sum(samples) / (2.0 * window)

        # Gravity: a weak pull to the origin stops the whole cluster drifting away together.
        origin = self._origin
        raw = _distance(origin.vec, vec) + origin.height + height
        adjusted = raw + origin.adjustment + adjustment
        dist = adjusted if adjusted > 0.0 else raw
        force = -((dist / cfg.gravity_rho) ** 2)
        vec, height = self._push(vec, height, origin.vec, origin.height,
                                 _distance(vec, origin.vec), force)
        return Coordinate(vec=vec, error=error, adjustment=adjustment, height=height)

    def _push(
        self,
        vec: tuple[float, ...],
        height: float,
        o_vec: tuple[float, ...],
        o_height: float,
        mag: float,
        force: float,
    ) -> tuple[tuple[float, ...], float]:
        """`apply_force` on bare components; `mag` is the distance from `vec` to `o_vec`."""
        if mag > ZERO_THRESHOLD:
            vec = tuple([v + ((v - o) / mag) * force for v, o in zip(vec, o_vec, strict=True)])
            height = max((height + o_height) * force / mag + height, self.config.height_min)
            return vec, height
        unit, _ = _unit_vector_at(vec, o_vec, self._rng)  # they coincide: a random direction
        return tuple([v + u * force for v, u in zip(vec, unit, strict=True)]), height


# -- vector helpers --------------------------------------------------------------------------


def _check_dimensions(a: Coordinate, b: Coordinate) -> None:
    if len(a.vec) != len(b.vec):
        raise ValueError(f"coordinate dimensions differ: {len(a.vec)} != {len(b.vec)}")


def _diff(a: Sequence[float], b: Sequence[float]) -> tuple[float, ...]:
    return tuple(x - y for x, y in zip(a, b, strict=True))


def _magnitude(vec: Sequence[float]) -> float:
    return math.sqrt(sum(v * v for v in vec))


def _distance(a: Sequence[float], b: Sequence[float]) -> float:
    """`_magnitude(_diff(a, b))` without Python-level loops (the same operations in the same
    order); the caller has checked that the dimensions agree."""
    d = list(map(operator.sub, a, b))
    return math.sqrt(sum(map(operator.mul, d, d)))


def _unit_vector_at(
    a: Sequence[float], b: Sequence[float], rng: random.Random
) -> tuple[tuple[float, ...], float]:
    """The unit vector from `b` towards `a`, and the distance between them.

    Coinciding points get a random direction and distance 0, so two new members (both
    at the origin) still push each other apart.
    """
    d = _diff(a, b)
    mag = _magnitude(d)
    if mag > ZERO_THRESHOLD:
        return tuple(x / mag for x in d), mag
    d = tuple(rng.random() - 0.5 for _ in d)
    mag = _magnitude(d)
    if mag > ZERO_THRESHOLD:
        return tuple(x / mag for x in d), 0.0
    return (1.0,) + (0.0,) * (len(d) - 1), 0.0
