"""`Agent.explain`: a real agent tells why a peer it saw die is dead, and what moved its health."""

from __future__ import annotations

import asyncio
import json

import pytest
from test_metrics import agent, cluster, wait_for_event

from swimguard.errors import UsageError
from swimguard.protocol.events import MemberFailed
from swimguard.protocol.history import HealthCause, SuspicionEnd
from swimguard.protocol.members import MemberState

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def test_explain_a_peer_that_died_and_ourselves() -> None:
    async def body() -> None:
        agents = [agent(n) for n in ("a", "b", "c")]
        try:
            with pytest.raises(UsageError):
                agents[0].explain("a")  # not started
            await cluster(agents)
            a = agents[0]
            live = a.explain("c")
            assert live is not None
            assert live.state is MemberState.ALIVE
            assert live.death is None
            assert a.explain("nobody") is None

            await agents[2].close()  # c dies without leaving
            await wait_for_event(
                a, lambda ev: isinstance(ev, MemberFailed) and ev.member.name == "c"
            )
            ex = a.explain("c")
            assert ex is not None
            assert ex.state is MemberState.DEAD
            assert ex.death is not None
            assert ex.death.declared_by in {"a", "b"}
            assert ex.suspicion is not None
            assert ex.suspicion.accuser in {"a", "b"}
            assert ex.suspicion.ended in {SuspicionEnd.EXPIRED, SuspicionEnd.DEAD_NEWS}
            assert ex.since is not None
            assert ex.since <= ex.now
            d = ex.to_dict()
            assert json.loads(json.dumps(d, allow_nan=False)) == d
            assert d["state"] == "dead"

            a.report_health(2, "disk full")
            me = a.explain("a")
            assert me is not None
            assert me.is_self
            assert me.health_score == a.health_score
            assert me.health_changes[-1].cause is HealthCause.APP_REPORT
        finally:
            for x in agents:
                await x.close()

    asyncio.run(body())
