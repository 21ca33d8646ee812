"""Self-fencing on the `Agent`: a member too slow for too long leaves the cluster by itself.

The core decides (`Config.self_fence_after`, `swimguard.protocol.fencing`) and emits
`SelfFenced`; this watch logs it at ERROR, starts a graceful leave (with `serf_compat` the
Serf leave intent goes first, so Serf agents record a leave, not a failure) and passes
the event on to `Agent.events()`. The agent keeps running until closed: whether the
process should exit is the application's call (`swimguard agent` exits with status 75 for
a supervisor to restart it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from swimguard.aio.agent_event import EventFilter
from swimguard.aio.agent_keys import AgentKeys
from swimguard.aio.driver import NodeEvent
from swimguard.errors import UsageError
from swimguard.protocol.events import SelfFenced

__all__ = ["FENCE_LEAVE_TIMEOUT", "AgentFence", "SelfFenceWatch"]

log = logging.getLogger("swimguard.agent")

FENCE_LEAVE_TIMEOUT: Final = 5.0
"""Seconds the fenced agent's leave broadcast may take (`Agent.leave`'s default)."""


class SelfFenceWatch:
    """Calls `on_fenced` once, at the first `SelfFenced`; passes every event on."""

    def __init__(self, name: str, on_fenced: Callable[[], None]) -> None:
        self._name = name
        self._on_fenced = on_fenced
        self.fenced: SelfFenced | None = None

    def filter(self, event: NodeEvent) -> NodeEvent | None:
        if isinstance(event, SelfFenced) and self.fenced is None:
            self.fenced = event
            log.error(
                "%s: health score %d has been at its maximum for %.1fs: leaving the cluster "
                "(self-fencing)",
                self._name, event.score, event.after,
            )
            self._on_fenced()
        return event

    def close(self) -> None:
        """Nothing to release."""


class AgentFence(AgentKeys):
    """Adds self-fencing's leave and `self_fenced`/`fence_leave` to the agent."""

    _fence_watch: SelfFenceWatch
    _fence_leave: asyncio.Task[bool] | None = None

    if TYPE_CHECKING:

        async def leave(self, timeout: float = 5.0) -> bool: ...  # noqa: ASYNC109

    def _event_filters(self) -> tuple[EventFilter, ...]:
        self._fence_watch = SelfFenceWatch(self.name, self._leave_fenced)
        return (self._fence_watch, *super()._event_filters())

    def _leave_fenced(self) -> None:
        self._fence_leave = asyncio.get_running_loop().create_task(self._fenced_leave())

    async def _fenced_leave(self) -> bool:
        try:
            done = await self.leave(FENCE_LEAVE_TIMEOUT)
        except UsageError:  # closed meanwhile: nobody to leave
            return False
        if not done:
            log.warning("%s: self-fencing leave did not finish in %.1fs",
                        self.name, FENCE_LEAVE_TIMEOUT)
        return done

    @property
    def self_fenced(self) -> bool:
        """True once this agent fenced itself (`Config.self_fence_after`)."""
        return self._fence_watch.fenced is not None

    @property
    def fence_leave(self) -> asyncio.Task[bool] | None:
        """The leave self-fencing started (its result: the broadcast finished), or None."""
        return self._fence_leave
