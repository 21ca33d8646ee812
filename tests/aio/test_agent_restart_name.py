"""A member restarted at a new address under the same name: the join says it was refused
(memberlist keeps the old address until it forgets it, or `dead_node_reclaim_time`)."""

from __future__ import annotations

import asyncio

import pytest
from test_agent_cluster import close_all, cluster, until

from swimguard.aio import Agent
from swimguard.config import Config
from swimguard.errors import JoinError
from swimguard.protocol.events import MemberFailed, NameHeldElsewhere
from swimguard.protocol.members import MemberState

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def serf_agent(name: str, config: Config) -> Agent:
    return Agent(name, bind=("127.0.0.1", 0), config=config)


def test_a_restart_at_a_new_address_is_refused_not_joined() -> None:
    async def body() -> None:
        config = Config.local()
        a, b = serf_agent("a", config), serf_agent("b", config)
        again = serf_agent("b", config)
        try:
            await cluster([a, b])
            old = b.advertise_address
            await b.close()  # crash: a holds "b" at the old address, dead soon
            async for event in a.events():
                if isinstance(event, MemberFailed) and event.member.name == "b":
                    break
            await again.start()
            assert again.advertise_address != old
            with pytest.raises(JoinError, match="refused: the cluster still holds this name"):
                await again.join([a.advertise_address])
            held = [e async for e in _first(again, NameHeldElsewhere)]
            assert held[0].addr == old
        finally:
            await close_all([a, b, again])

    asyncio.run(body())


def test_with_a_reclaim_time_the_restart_takes_the_name_once_it_passed() -> None:
    async def body() -> None:
        config = Config.local(dead_node_reclaim_time=0.5)
        a, b = serf_agent("a", config), serf_agent("b", config)
        again = serf_agent("b", config)
        try:
            await cluster([a, b])
            await b.close()
            async for event in a.events():
                if isinstance(event, MemberFailed) and event.member.name == "b":
                    break
            await asyncio.sleep(0.6)  # a lower bound: the reclaim time has passed
            await again.start()
            assert await again.join([a.advertise_address]) == 1

            def b_alive_at_new_address() -> bool:
                found = [m for m in a.members() if m.name == "b"]
                return (
                    bool(found)
                    and found[0].state is MemberState.ALIVE
                    and (found[0].addr == again.advertise_address)
                )

            await until(b_alive_at_new_address, 30)
        finally:
            await close_all([a, b, again])

    asyncio.run(body())


async def _first(agent: Agent, kind: type) -> object:  # type: ignore[misc]
    async for event in agent.events():
        if isinstance(event, kind):
            yield event
            return
