"""Name conflicts on the `Agent`: said loudly, and the loser of Serf's vote stops.

Names must be unique in a Serf cluster. When another member claims ours, the `SerfNode`
runs Serf's vote (`_serf_conflict`); this watch logs the conflict at ERROR and, when we
are in the minority, has the agent close itself (as Serf shuts down; no leave, which
would mark the name, and so the other member, as left).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final

from swimguard.aio.driver import NodeEvent
from swimguard.aio.sockets import format_address
from swimguard.protocol.events import NameConflict
from swimguard.serf.events import NameConflictResolved

__all__ = ["NameConflictWatch"]

log = logging.getLogger("swimguard.agent")

# Every alive message of the other member repeats the conflict: say it once per address.
_MAX_REPORTED: Final = 16


class NameConflictWatch:
    """Logs name conflicts; calls `on_lost` once if we lose the vote on our name."""

    def __init__(self, name: str, on_lost: Callable[[], None]) -> None:
        self._name = name
        self._on_lost = on_lost
        self._reported: set[tuple[str, int]] = set()
        self.lost = False

    def filter(self, event: NodeEvent) -> NodeEvent | None:
        if isinstance(event, NameConflict):
            other = event.other
            if other.addr not in self._reported and len(self._reported) < _MAX_REPORTED:
                self._reported.add(other.addr)
                if other.name == self._name:
                    log.error(
                        "%s: node name conflicts with another node at %s. Names must be unique!",
                        self._name,
                        format_address(other.addr),
                    )
                else:
                    log.warning(
                        "%s: name conflict for %r: both %s and %s are claiming it",
                        self._name,
                        other.name,
                        format_address(event.existing.addr),
                        format_address(other.addr),
                    )
        elif isinstance(event, NameConflictResolved):
            if event.won:
                log.warning(
                    "%s: majority in name conflict resolution [%d / %d]",
                    self._name, event.matching, event.responses,
                )
            elif not self.lost:
                self.lost = True
                log.error(
                    "%s: minority in name conflict resolution [%d / %d]: stopping, "
                    "another member holds this name",
                    self._name, event.matching, event.responses,
                )
                self._on_lost()
        return event

    def close(self) -> None:
        """Nothing to release (the `EventRouter` closes every filter)."""
