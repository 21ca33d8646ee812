"""Serf member status in mixed clusters: `serf force-leave` of a swimguard member, ours of
a serf member (with and without prune), and `serf members -status failed` agreeing with
`Agent.serf_members()`."""

from __future__ import annotations

import asyncio
import json
import subprocess

import pytest
from bench.serf_harness import SERF, Cluster, SerfAgent
from interop_support import addr, local_agent, serf_agents_know, until, until_serf_status

from swimguard.aio import Agent
from swimguard.serf.status import SerfStatus

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]


def serf_cli(agent: SerfAgent, *args: str) -> str:
    assert SERF is not None
    return subprocess.run(
        [SERF, *args[:1], f"-rpc-addr=127.0.0.1:{agent.rpc_port}", *args[1:]],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    ).stdout


def serf_failed(agent: SerfAgent) -> set[str]:
    """`serf members -status failed`, the Go client's own filter."""
    out = serf_cli(agent, "members", "-status=failed", "-format=json")
    return {m["name"] for m in json.loads(out)["members"]}


def status_of(agent: Agent, name: str) -> SerfStatus | None:
    found = agent.serf_members(name=name)
    return found[0].status if found else None


def test_serf_force_leave_of_a_failed_swimguard_member(cluster: Cluster) -> None:
    s = cluster.start_serf("s")

    async def scenario() -> None:
        async with local_agent("py1") as py1:
            py2 = local_agent("py2")
            await py2.start()
            try:
                await py1.join([s.addr])
                await py2.join([s.addr])
                await serf_agents_know(cluster, {"s", "py1", "py2"})
                await until(lambda: status_of(py1, "py2") is SerfStatus.ALIVE, 10, "py1: py2")
            finally:
                await py2.close()  # a crash: no leave
            await until_serf_status(s, "py2", "failed", 30)
            await until(lambda: status_of(py1, "py2") is SerfStatus.FAILED, 30, "py1: failed")
            failed = {m.name for m in py1.serf_members(status=SerfStatus.FAILED)}
            assert failed == await asyncio.to_thread(serf_failed, s) == {"py2"}
            await asyncio.to_thread(serf_cli, s, "force-leave", "py2")
            await until(lambda: status_of(py1, "py2") is SerfStatus.LEFT, 20, "py1: py2 left")
            await until_serf_status(s, "py2", "left", 10)

    asyncio.run(scenario())


def test_our_force_leave_of_a_failed_serf_member_then_prune(cluster: Cluster) -> None:
    s1 = cluster.start_serf("s1")
    s2 = cluster.start_serf("s2", [s1.addr])

    async def scenario() -> None:
        async with local_agent("py") as py:
            await py.join([s1.addr])
            await serf_agents_know(cluster, {"s1", "s2", "py"})
            await until(lambda: status_of(py, "s2") is SerfStatus.ALIVE, 10, "py: s2 alive")
            s2.proc.kill9()
            await until(lambda: status_of(py, "s2") is SerfStatus.FAILED, 30, "py: s2 failed")
            await until_serf_status(s1, "s2", "failed", 30)
            assert await asyncio.to_thread(serf_failed, s1) == {"s2"}
            assert [m.name for m in py.serf_members(status=SerfStatus.FAILED)] == ["s2"]
            py.force_leave("s2")
            await until_serf_status(s1, "s2", "left", 20)
            assert status_of(py, "s2") is SerfStatus.LEFT
            py.force_leave("s2", prune=True)
            await until(lambda: "s2" not in s1.statuses(), 20, "s1 erased s2", blocking=True)
            assert status_of(py, "s2") is None
            assert addr(py) in {m["addr"] for m in s1.members_cli()}

    asyncio.run(scenario())


def test_a_swimguard_restart_at_a_new_address_is_refused_by_a_serf_seed(cluster: Cluster) -> None:
    from swimguard.errors import JoinError

    s = cluster.start_serf("s")

    async def scenario() -> None:
        first = local_agent("py")
        await first.start()
        try:
            await first.join([s.addr])
            await until_serf_status(s, "py", "alive", 10)
        finally:
            await first.close()
        await until_serf_status(s, "py", "failed", 30)
        async with local_agent("py") as again:
            assert addr(again) != addr(first)
            with pytest.raises(JoinError, match="refused: the cluster still holds this name"):
                await again.join([s.addr])

    asyncio.run(scenario())
