"""`AgentHealth`: the application's say in the agent's Lifeguard health score.

Semantics (the rule itself is in `swimguard.protocol.awareness`): `report_health(score,
reason)` with `score > 0` is evidence that this process is slow, weighed like `score`
missed nacks: the health score rises by `score` (clamped to `awareness_max_multiplier -
1`) and decays by one per successful probe, as Lifeguard's own evidence does. While the
score is up the node probes less often, waits longer before declaring others dead
(`health_scaled_suspicion`) and refreshes its own alive, so a slow process does not
accuse healthy peers. An application whose trouble lasts reports again, once per probe
interval; `report_health(0)` withdraws what is left of its points at once.
"""

from __future__ import annotations

import collections
import functools
import logging
from typing import TYPE_CHECKING

from swimguard.config import Config
from swimguard.errors import UsageError
from swimguard.protocol.awareness import check_app_score
from swimguard.protocol.node import Node
from swimguard.serf.node import SerfNode

if TYPE_CHECKING:
    from swimguard.aio.driver import DrivenNode, Driver

__all__ = ["AgentHealth", "HealthLog"]

log = logging.getLogger("swimguard.agent")

MAX_REASON = 128
"""Characters of a reason kept (it becomes a metric label and a log line)."""
MAX_REASONS = 32
"""Distinct reasons counted; later new ones are counted as "other" (label cardinality)."""


class HealthLog:
    """The application's reports: how many per reason, and the last one."""

    __slots__ = ("by_reason", "last")

    def __init__(self) -> None:
        self.by_reason: collections.Counter[str] = collections.Counter()
        self.last: tuple[int, str] | None = None

    def note(self, score: int, reason: str) -> None:
        reason = reason[:MAX_REASON]
        key = reason if reason in self.by_reason or len(self.by_reason) < MAX_REASONS else "other"
        self.by_reason[key] += 1
        if self.last != (score, reason):
            log.info("application health %d (%s)", score, reason or "no reason given")
        self.last = (score, reason)


class AgentHealth:
    """Adds `report_health()` to the class that owns the node and driver."""

    config: Config

    if TYPE_CHECKING:

        def _running(self) -> tuple[DrivenNode, Driver]: ...

    @functools.cached_property
    def _health_log(self) -> HealthLog:
        return HealthLog()

    def report_health(self, score: int, reason: str = "") -> None:
        """Fold the application's health into the Lifeguard score (module docstring).

        `score`: 0 (healthy: withdraw earlier reports) to `config.awareness_max_multiplier
        - 1`; ValueError outside that. `reason` is logged when the report changes and
        counted in the `swimguard_app_health_reports{reason}` metric. Needs swimguard's
        own core (UsageError with a custom `node_factory`).
        """
        node, driver = self._running()
        check_app_score(score, self.config.awareness_max_multiplier)
        if not isinstance(reason, str):
            raise ValueError(f"reason must be a str, got {reason!r}")
        core = node.node if isinstance(node, SerfNode) else node
        if not isinstance(core, Node):
            raise UsageError("report_health() needs swimguard's own core, not a node_factory's")
        self._health_log.note(score, reason)
        driver.input(lambda now: core.report_health(score, now=now))
