"""`Agent.serf_members()` and `Agent.force_leave()` on 127.0.0.1: Serf status over sockets."""

from __future__ import annotations

import asyncio

import pytest
from test_agent_cluster import close_all, cluster, until

from swimguard.aio import Agent
from swimguard.aio.agent_config import AgentConfig
from swimguard.config import Config
from swimguard.errors import UsageError
from swimguard.serf.status import MemberReaped, SerfStatus, StatusTimes

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def serf_agent(name: str, times: StatusTimes | None = None) -> Agent:
    options = AgentConfig(serf_status_times=times or StatusTimes())
    return Agent(
        name, bind=("127.0.0.1", 0), config=Config.local(), tags={"role": name}, options=options
    )


def status_of(a: Agent, name: str) -> SerfStatus | None:
    found = a.serf_members(name=name)
    return found[0].status if found else None


def test_failed_member_is_listed_then_force_left_everywhere() -> None:
    async def body() -> None:
        agents = [serf_agent(n) for n in ("a", "b", "c")]
        try:
            await cluster(agents)
            a, b, c = agents
            assert {m.name for m in a.serf_members(status=SerfStatus.ALIVE)} == {"a", "b", "c"}
            assert [m.name for m in a.serf_members(tags={"role": "b"})] == ["b"]
            await c.close()  # no leave: failed
            await until(lambda: status_of(a, "c") is SerfStatus.FAILED, 30)
            await until(lambda: status_of(b, "c") is SerfStatus.FAILED, 30)
            assert [m.name for m in b.serf_members(status=SerfStatus.FAILED)] == ["c"]
            a.force_leave("c")
            await until(lambda: status_of(b, "c") is SerfStatus.LEFT, 30)
            assert status_of(a, "c") is SerfStatus.LEFT
        finally:
            await close_all(agents)

    asyncio.run(body())


def test_prune_erases_and_publishes_member_reaped() -> None:
    async def body() -> None:
        agents = [serf_agent(n) for n in ("a", "b", "c")]
        try:
            await cluster(agents)
            a, b, c = agents
            await c.close()
            # Both see the failure first: a force-leave about a member still alive at the
            # sender is legal, but then the sender's table re-learns the failure later.
            await until(lambda: status_of(a, "c") is SerfStatus.FAILED, 30)
            await until(lambda: status_of(b, "c") is SerfStatus.FAILED, 30)
            a.force_leave("c", prune=True)
            async for event in b.events():
                if isinstance(event, MemberReaped):
                    assert event.member.name == "c"
                    assert event.forced
                    break
            assert status_of(b, "c") is None
        finally:
            await close_all(agents)

    asyncio.run(body())


def test_serf_members_needs_serf_compat_and_a_started_agent() -> None:
    async def body() -> None:
        plain = Agent("p", bind=("127.0.0.1", 0), config=Config.local(), serf_compat=False)
        with pytest.raises(UsageError):
            plain.serf_members()
        async with plain:
            with pytest.raises(UsageError, match="serf_compat"):
                plain.force_leave("x")
        async with serf_agent("s") as s:
            with pytest.raises(ValueError, match="bad regexp"):
                s.serf_members(name="(")
            with pytest.raises(ValueError, match="bad member name"):
                s.force_leave("")

    asyncio.run(body())
