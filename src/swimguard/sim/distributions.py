"""Delay distributions for links and slow members, parsable from short text.

Text forms (used by scenario files and the CLI): ``fixed:0.5``, ``uniform:0.001,0.005``,
``exp:2`` (exponential with that mean) and ``lognormal:MEDIAN,SIGMA``. Every sample is drawn
from the `random.Random` the caller passes, so a seeded simulation stays reproducible.
"""

from __future__ import annotations

import dataclasses
import math
import random

__all__ = ["Distribution", "Exponential", "Fixed", "LogNormal", "Uniform", "parse_distribution"]


@dataclasses.dataclass(frozen=True, slots=True)
class Fixed:
    """Always `value` seconds."""

    value: float

    def sample(self, rng: random.Random) -> float:
        """Return the fixed value (draws nothing, so it does not shift the stream)."""
        return self.value

    def mean(self) -> float:
        """Expected value."""
        return self.value

    def __str__(self) -> str:
        return f"fixed:{self.value:g}"


@dataclasses.dataclass(frozen=True, slots=True)
class Uniform:
    """Uniform on [low, high] seconds."""

    low: float
    high: float

    def sample(self, rng: random.Random) -> float:
        """Draw one value."""
        return self.low + (self.high - self.low) * rng.random()

    def mean(self) -> float:
        """Expected value."""
        return (self.low + self.high) / 2

    def __str__(self) -> str:
        return f"uniform:{self.low:g},{self.high:g}"


@dataclasses.dataclass(frozen=True, slots=True)
class Exponential:
    """Exponential with mean `mean_s` seconds (memoryless: a heavy-ish tail of long stalls)."""

    mean_s: float

    def sample(self, rng: random.Random) -> float:
        """Draw one value."""
        return rng.expovariate(1.0 / self.mean_s) if self.mean_s > 0 else 0.0

    def mean(self) -> float:
        """Expected value."""
        return self.mean_s

    def __str__(self) -> str:
        return f"exp:{self.mean_s:g}"


@dataclasses.dataclass(frozen=True, slots=True)
class LogNormal:
    """Log-normal with median `median` seconds and shape `sigma` (a long tail of stalls)."""

    median: float
    sigma: float

    def sample(self, rng: random.Random) -> float:
        """Draw one value."""
        return self.median * math.exp(self.sigma * rng.gauss(0.0, 1.0))

    def mean(self) -> float:
        """Expected value."""
        return self.median * math.exp(self.sigma * self.sigma / 2)

    def __str__(self) -> str:
        return f"lognormal:{self.median:g},{self.sigma:g}"


Distribution = Fixed | Uniform | Exponential | LogNormal


def parse_distribution(text: str) -> Distribution:
    """Parse ``kind:args`` (see the module docstring); a bare number means fixed.

    Raises ValueError on an unknown kind, a wrong argument count or a negative value.
    """
    kind, _, args_text = text.strip().partition(":")
    if not args_text:
        kind, args_text = "fixed", kind
    try:
        args = [float(a) for a in args_text.split(",")]
    except ValueError:
        raise ValueError(f"bad distribution {text!r}: arguments must be numbers") from None
    if any(a < 0 or math.isnan(a) or math.isinf(a) for a in args):
        raise ValueError(f"bad distribution {text!r}: arguments must be finite and >= 0")
    expected = {"fixed": 1, "uniform": 2, "exp": 1, "lognormal": 2}
    if kind not in expected:
        raise ValueError(f"bad distribution {text!r}: kind must be one of {sorted(expected)}")
    if len(args) != expected[kind]:
        raise ValueError(f"bad distribution {text!r}: {kind} takes {expected[kind]} argument(s)")
    if kind == "fixed":
        return Fixed(args[0])
    if kind == "uniform":
        if args[1] < args[0]:
            raise ValueError(f"bad distribution {text!r}: high < low")
        return Uniform(args[0], args[1])
    if kind == "exp":
        return Exponential(args[0])
    return LogNormal(args[0], args[1])
