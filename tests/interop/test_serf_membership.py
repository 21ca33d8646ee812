"""Mixed clusters with real serf agents: join both ways, SIGKILL both ways, graceful leave."""

from __future__ import annotations

import asyncio

import pytest
from bench.serf_harness import Cluster
from interop_support import (
    GOSSIP_REPAIR,
    addr,
    alive_names,
    local_agent,
    serf_agents_know,
    states,
    until,
    until_serf_status,
)

from swimguard.protocol.members import MemberState
from swimguard.serf import decode_tags

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]


def _all_alive(cluster: Cluster, names: set[str]) -> bool:
    views = cluster.serf_views()
    return all(set(v) >= names and all(v[n] == "alive" for n in names) for v in views.values())


def test_swimguard_joins_a_three_serf_cluster(cluster: Cluster) -> None:
    a = cluster.start_serf("a")
    cluster.start_serf("b", [a.addr])
    cluster.start_serf("c", [a.addr])
    everyone = {"a", "b", "c", "py"}

    async def scenario() -> None:
        async with local_agent("py") as py:
            assert await py.join([a.addr]) == 1
            await until(lambda: alive_names(py) == everyone, 10, "py to see a, b, c alive")
            # b and c learn of py by gossip, which under -profile=local (RetransmitMult 2)
            # misses a member now and then; the periodic push/pull (15 s) then repairs it.
            await until(lambda: _all_alive(cluster, everyone), 35, "serf views", blocking=True)
            # the Go command-line client itself
            cli = await asyncio.to_thread(a.members_cli)
            row = next(m for m in cli if m["name"] == "py")
            assert row["status"] == "alive"
            assert row["addr"] == addr(py)
            assert row["protocol"] == {"min": 2, "max": 5, "version": 5}
            # still consistent a few probe rounds later (no suspicion of the Python node)
            await asyncio.sleep(3)
            assert alive_names(py) == everyone
            assert await asyncio.to_thread(lambda: _all_alive(cluster, everyone))

    asyncio.run(scenario())


def test_serf_agent_joins_a_swimguard_cluster(cluster: Cluster) -> None:
    async def scenario() -> None:
        async with local_agent("p1") as p1, local_agent("p2") as p2:
            await p2.join([addr(p1)])
            await asyncio.to_thread(cluster.start_serf, "s", [addr(p1)])
            everyone = {"p1", "p2", "s"}
            for agent in (p1, p2):
                await until(lambda a=agent: alive_names(a) == everyone, 10, "python views")
            await until(lambda: _all_alive(cluster, everyone), 10, "serf view", blocking=True)
            # serf without tags advertises `ff 80`: an empty tag map, not a role
            s_member = next(m for m in p1.members() if m.name == "s")
            assert decode_tags(s_member.meta) == {}

    asyncio.run(scenario())


def test_sigkill_of_a_serf_agent_is_failed_for_swimguard(cluster: Cluster) -> None:
    a = cluster.start_serf("a")
    b = cluster.start_serf("b", [a.addr])
    c = cluster.start_serf("c", [a.addr])

    async def scenario() -> None:
        async with local_agent("py") as py:
            await py.join([a.addr])
            await until(lambda: alive_names(py) == {"a", "b", "c", "py"}, 10, "py joined")
            # b joined before c, so it learns of c only by gossip, which it can miss; an
            # agent that never knew c ignores every later suspect/dead about it and never
            # reports it failed (the old flake). So b must know c before the kill.
            await serf_agents_know(cluster, {"a", "b", "c", "py"})
            c.proc.kill9()
            await until(lambda: states(py).get("c") is MemberState.DEAD, 20, "py: c dead")
            # b may miss the first declarer's dead gossip (local profile: each broadcast goes
            # out in 2 packets only) and then relies on its own suspicion timeout.
            await until_serf_status(b, "c", "failed", 20)
            assert states(py)["a"] is MemberState.ALIVE
            assert states(py)["b"] is MemberState.ALIVE

    asyncio.run(scenario())


def test_sigkill_of_a_swimguard_agent_is_failed_for_serf(cluster: Cluster) -> None:
    a = cluster.start_serf("a")
    b = cluster.start_serf("b", [a.addr])
    py = cluster.start_swim("py", [a.addr])
    from bench.serf_harness import wait_for

    wait_for(lambda: a.statuses().get("py") == "alive", 10, what="a sees py")
    wait_for(lambda: py.view().get("b") == "member-join", 10, what="py sees b")
    # b learns of py only by gossip (py joined through a): it must know py before the kill,
    # or it ignores the dead news about it for good.
    wait_for(lambda: cluster.serf_all_alive({"a", "b", "py"}), GOSSIP_REPAIR, what="b sees py")
    py.proc.kill9()
    wait_for(lambda: a.statuses().get("py") == "failed", 20, what="a: py failed")
    wait_for(lambda: b.statuses().get("py") == "failed", 20, what="b: py failed")
    # not "left": a crash is not a leave
    assert {m["name"]: m["status"] for m in a.members_cli()}["py"] == "failed"


def test_graceful_leave_of_swimguard_is_left_for_serf(cluster: Cluster) -> None:
    a = cluster.start_serf("a")
    b = cluster.start_serf("b", [a.addr])

    async def scenario() -> None:
        async with local_agent("py") as py:
            await py.join([a.addr])
            await until(lambda: a.statuses().get("py") == "alive", 10, "a sees py", blocking=True)
            # b must know py before the leave: a leave about an unknown member is dropped.
            await serf_agents_know(cluster, {"a", "b", "py"})
            assert await py.leave(timeout=5.0)
        for agent in (a, b):
            await until_serf_status(agent, "py", "left", 10)
        await asyncio.sleep(2.0)  # and it stays left (no failure detection kicks in)
        assert a.statuses()["py"] == "left"
        assert "EventMemberFailed: py" not in "\n".join(line for _, line in a.proc.log.snapshot())

    asyncio.run(scenario())


def test_graceful_leave_of_serf_is_left_for_swimguard(cluster: Cluster) -> None:
    a = cluster.start_serf("a")
    b = cluster.start_serf("b", [a.addr])

    async def scenario() -> None:
        async with local_agent("py") as py:
            await py.join([a.addr])
            await until(lambda: alive_names(py) == {"a", "b", "py"}, 10, "py joined")

            await asyncio.to_thread(b.leave)
            await until(lambda: states(py).get("b") is MemberState.LEFT, 15, "py: b left")
            assert states(py)["a"] is MemberState.ALIVE

    asyncio.run(scenario())
