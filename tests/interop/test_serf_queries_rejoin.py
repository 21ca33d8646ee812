"""Mixed clusters with real serf agents: Serf queries reach us, restarted members come back."""

from __future__ import annotations

import asyncio
import subprocess

import pytest
from bench.serf_harness import SERF, Cluster, wait_for
from interop_support import EventLog, alive_names, local_agent, states, until

from swimguard.protocol.members import MemberState
from swimguard.serf import QueryReceived

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]


def test_serf_reachability_counts_our_ack(cluster: Cluster) -> None:
    a = cluster.start_serf("a")
    cluster.start_serf("b", [a.addr])

    async def scenario() -> None:
        async with local_agent("py") as py:
            log = EventLog(py)
            await py.join([a.addr])
            await until(lambda: a.statuses().get("py") == "alive", 10, "a sees py", blocking=True)
            assert SERF is not None
            done = await asyncio.to_thread(
                subprocess.run,
                [SERF, "reachability", f"-rpc-addr=127.0.0.1:{a.rpc_port}"],
                capture_output=True,
                text=True,
                timeout=30,
            )
            out = done.stdout + done.stderr
            assert "Successfully contacted all live nodes" in out, out
            assert "live members: 3" in out, out
            queries = log.of(QueryReceived)
            assert [q.query.name for q in queries] == ["_serf_ping"]
            await log.stop()

    asyncio.run(scenario())


def test_restarted_swimguard_agent_is_alive_again_for_serf(cluster: Cluster) -> None:
    a = cluster.start_serf("a")
    b = cluster.start_serf("b", [a.addr])
    py = cluster.start_swim("py", [a.addr])
    wait_for(lambda: a.statuses().get("py") == "alive", 10, what="a sees py")
    py.proc.kill9()
    wait_for(lambda: a.statuses().get("py") == "failed", 20, what="a: py failed")
    # same name, same address: our new incarnation must refute the old "dead"
    py2 = cluster.start_swim("py", [b.addr], port=py.port)
    wait_for(lambda: a.statuses().get("py") == "alive", 10, what="a: py alive again")
    wait_for(lambda: b.statuses().get("py") == "alive", 10, what="b: py alive again")
    wait_for(lambda: py2.view().get("a") == "member-join", 10, what="py2 sees a")


def test_restarted_serf_agent_is_alive_again_for_swimguard(cluster: Cluster) -> None:
    a = cluster.start_serf("a")
    b = cluster.start_serf("b", [a.addr])

    async def scenario() -> None:
        async with local_agent("py") as py:
            await py.join([a.addr])
            await until(lambda: alive_names(py) == {"a", "b", "py"}, 10, "py joined")
            b.proc.kill9()
            await until(lambda: states(py).get("b") is MemberState.DEAD, 20, "py: b dead")
            await asyncio.to_thread(cluster.start_serf, "b", [a.addr], port=b.port)
            await until(lambda: states(py).get("b") is MemberState.ALIVE, 10, "py: b back")
            assert states(py)["a"] is MemberState.ALIVE

    asyncio.run(scenario())
