"""Cluster-size formulas shared by memberlist's timers (`util.go`)."""

from __future__ import annotations

import math
from typing import Final

__all__ = ["push_pull_scale", "retransmit_limit", "suspicion_timeout"]

PUSH_PULL_SCALE_THRESHOLD: Final = 32


def suspicion_timeout(suspicion_mult: int, n: int, interval: float) -> float:
    """Min suspicion timeout: `suspicion_mult * max(1, log10(max(1, n))) * interval`.

    Like Go, the node scale is truncated to milliseconds of precision before multiplying.
    """
    node_scale = max(1.0, math.log10(max(1.0, float(n))))
    return suspicion_mult * math.floor(node_scale * 1000) * interval / 1000


def retransmit_limit(retransmit_mult: int, n: int) -> int:
    """How many times one broadcast is sent: `retransmit_mult * ceil(log10(n + 1))`."""
    return retransmit_mult * math.ceil(math.log10(n + 1))


def push_pull_scale(interval: float, n: int) -> float:
    """Push/pull period: `interval` up to 32 nodes, then `× (ceil(log2(n) - 5) + 1)`."""
    if n <= PUSH_PULL_SCALE_THRESHOLD:
        return interval
    multiplier = math.ceil(math.log2(n) - math.log2(PUSH_PULL_SCALE_THRESHOLD)) + 1
    return multiplier * interval
