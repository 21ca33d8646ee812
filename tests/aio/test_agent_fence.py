"""Self-fencing on real agents: a member whose loop keeps blocking (or whose application
says it is failing) leaves the cluster by itself, and its peers see it left, not failed."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from test_metrics import LOCAL, agent, cluster, wait_for_event

from swimguard.aio import Agent
from swimguard.config import Config
from swimguard.protocol.events import MemberLeft, SelfFenced
from swimguard.protocol.members import MemberState
from swimguard.protocol.outgoing import Address

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

STALL = 0.5


class BlockedAgent(threading.Thread):
    """An agent on its own loop, blocked `STALL` s again and again until it fences."""

    def __init__(self, seed: Address) -> None:
        super().__init__(daemon=True)
        self.seed = seed
        self.ready = threading.Event()
        self.abort = threading.Event()
        self.fence: SelfFenced | None = None
        self.left_in_time: bool | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # surfaced by the test
            self.error = exc
        self.ready.set()

    async def _main(self) -> None:
        config = Config.local(self_fence_after=2.0)
        async with Agent("blocked", config=config, serf_compat=False) as me:
            await me.join([self.seed])
            watcher = asyncio.create_task(self._watch(me))
            self.ready.set()
            while self.fence is None and not self.abort.is_set():
                time.sleep(STALL)  # noqa: ASYNC251 - the point: block the loop
                await asyncio.sleep(0)
            assert me.self_fenced
            leave = me.fence_leave
            assert leave is not None
            self.left_in_time = await leave
            watcher.cancel()

    async def _watch(self, me: Agent) -> None:
        async for event in me.events():
            if isinstance(event, SelfFenced):
                self.fence = event


def test_an_agent_whose_loop_keeps_blocking_fences_itself_and_leaves() -> None:
    async def body() -> None:
        healthy = agent("healthy")
        blocked: BlockedAgent | None = None
        try:
            await healthy.start()
            blocked = BlockedAgent(healthy.advertise_address)
            blocked.start()
            await asyncio.to_thread(blocked.ready.wait, 30)
            assert blocked.error is None, blocked.error
            await wait_for_event(
                healthy, lambda ev: isinstance(ev, MemberLeft) and ev.member.name == "blocked"
            )
            await asyncio.to_thread(blocked.join, 30)
            assert blocked.error is None, blocked.error
            assert blocked.fence is not None
            assert blocked.fence.score >= 6
            assert blocked.fence.after == 2.0
            assert blocked.left_in_time is True
            assert not any(
                m.name == "blocked" and m.state.name == "DEAD" for m in healthy.members()
            )
        finally:
            if blocked is not None:
                blocked.abort.set()
            await healthy.close()

    asyncio.run(body())


def test_application_health_at_the_top_fences_a_serf_agent() -> None:
    async def body() -> None:
        a = agent("a")
        b = Agent("b", bind=LOCAL, config=Config.local(self_fence_after=1.0))
        try:
            await cluster([a, b])
            assert not b.self_fenced
            b.report_health(7, "database unreachable")
            fence = await wait_for_event(b, lambda ev: isinstance(ev, SelfFenced))
            assert isinstance(fence, SelfFenced)
            assert b.self_fenced
            assert b.fence_leave is not None
            assert await b.fence_leave
            await wait_for_event(
                a, lambda ev: isinstance(ev, MemberLeft) and ev.member.name == "b"
            )
            # Serf's leave intent went first: a shows b left, never failed.
            (seen,) = [m for m in a.members() if m.name == "b"]
            assert seen.state is MemberState.LEFT
            assert a.metrics.get_sample_value("serf_member_failed_total") == 0
        finally:
            await a.close()
            await b.close()

    asyncio.run(body())
