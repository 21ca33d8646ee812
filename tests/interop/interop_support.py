"""Helpers for in-process swimguard agents in interop tests (asyncio inside a sync test)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Final

from bench.serf_harness import Cluster, SerfAgent

from swimguard.aio.agent import Agent
from swimguard.config import Config
from swimguard.protocol.members import MemberState

GOSSIP_REPAIR: Final = 35.0
"""Seconds for every serf agent to learn of a member that joined through another agent.
Under -profile=local (RetransmitMult 2) each alive broadcast goes out in 2 packets only,
so at n=4 a third agent can miss it; the periodic push/pull (15 s, random peer) repairs it."""


def local_agent(name: str, **kwargs: Any) -> Agent:
    """An in-process agent on 127.0.0.1 (free port) with the LOCAL timing preset."""
    kwargs.setdefault("config", Config.local())
    return Agent(name, bind=("127.0.0.1", 0), **kwargs)


def addr(agent: Agent) -> str:
    """host:port a serf agent can `-join`."""
    host, port = agent.advertise_address
    return f"{host}:{port}"


def states(agent: Agent) -> dict[str, MemberState]:
    """name -> state in our member table."""
    return {m.name: m.state for m in agent.members()}


def alive_names(agent: Agent) -> set[str]:
    """Names our agent holds as alive."""
    return {n for n, s in states(agent).items() if s is MemberState.ALIVE}


async def until(
    predicate: Callable[[], Any], within: float, what: str, *, blocking: bool = False
) -> Any:
    """Poll `predicate` (in a thread if `blocking`, e.g. serf RPC) until truthy."""
    deadline = time.monotonic() + within
    while True:
        value = await asyncio.to_thread(predicate) if blocking else predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}; last={value!r}")
        await asyncio.sleep(0.1)


class EventLog:
    """Collects `agent.events()` in the background (the single consumer)."""

    def __init__(self, agent: Agent) -> None:
        self.events: list[tuple[float, object]] = []
        self._task = asyncio.get_running_loop().create_task(self._run(agent))

    async def _run(self, agent: Agent) -> None:
        events: AsyncIterator[object] = agent.events()
        async for event in events:
            self.events.append((time.monotonic(), event))

    def of(self, cls: type) -> list[Any]:
        """Events of type `cls`, in order."""
        return [e for _, e in self.events if isinstance(e, cls)]

    async def stop(self) -> None:
        """Stop collecting."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def serf_agents_know(
    cluster: Cluster, names: set[str], within: float = GOSSIP_REPAIR
) -> None:
    """Wait until every serf agent holds `names` alive (the precondition of any test that
    then kills or removes one of them: memberlist drops dead/suspect news about a member
    it never heard of, so an agent that missed the member's join can never report it)."""
    what = f"every serf agent to see {sorted(names)} alive"
    try:
        await until(lambda: cluster.serf_all_alive(names), within, what, blocking=True)
    except AssertionError as exc:
        views = await asyncio.to_thread(cluster.serf_views)
        raise AssertionError(f"{exc}; serf views: {views}") from None


async def until_serf_status(
    agent: SerfAgent, name: str, status: str, within: float, what: str = ""
) -> None:
    """Wait until serf `agent` reports member `name` with `status` (message shows the last)."""
    seen: list[str | None] = [None]

    def check() -> bool:
        seen[0] = agent.statuses().get(name)
        return seen[0] == status

    try:
        await until(check, within, what or f"{agent.name}: {name} {status}", blocking=True)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; {agent.name} last reported {name} as {seen[0]!r}") from None
