"""Network coordinates with real serf agents: `serf rtt` sees us, we estimate RTTs to serf.

Serf caches the coordinate each member puts in its acks; `serf rtt` reads that cache over
RPC (`get-coordinate`) and says `Could not find a coordinate` unless our acks carry one
serf accepts. The other way round, our coordinate cache fills from serf's acks.
"""

from __future__ import annotations

import asyncio
import math
import re
import subprocess

import pytest
from bench.serf_harness import SERF, Cluster, SerfAgent
from interop_support import addr, local_agent, until

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]

RTT_LINE = re.compile(r"Estimated (\S+) <-> (\S+) rtt: ([0-9.]+) ms")


def serf_rtt(agent: SerfAgent, *nodes: str) -> tuple[int, str]:
    """`serf rtt` (the Go command-line client) against `agent`: exit code and output."""
    assert SERF is not None
    done = subprocess.run(
        [SERF, "rtt", f"-rpc-addr=127.0.0.1:{agent.rpc_port}", *nodes],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return done.returncode, (done.stdout + done.stderr).strip()


def rtt_ms(agent: SerfAgent, *nodes: str) -> float | None:
    code, out = serf_rtt(agent, *nodes)
    if code != 0:
        assert "Could not find a coordinate" in out, out
        return None
    match = RTT_LINE.search(out)
    assert match is not None, out
    return float(match.group(3))


def coordinate_complaints(cluster: Cluster) -> list[str]:
    """What serf logs when an ack payload is not a coordinate it can use."""
    needles = ("coordinate", "ping version")
    return [
        f"{p.name}: {line}"
        for p in cluster.procs
        if p.name.startswith("serf-")
        for _, line in p.log.snapshot()
        if "[ERR]" in line and any(n in line.lower() for n in needles)
    ]


def test_serf_rtt_reports_swimguard_members_and_we_estimate_serf(cluster: Cluster) -> None:
    a = cluster.start_serf("a")
    cluster.start_serf("b", [a.addr])

    async def scenario() -> None:
        async with local_agent("py1") as py1, local_agent("py2") as py2:
            await py1.join([a.addr])
            await py2.join([addr(py1)])
            # Serf's view of us, from our acks: py1 <-> the serf agent, and py1 <-> py2.
            ms = await until(  # None (exit 1, "Could not find") until serf has probed py1
lambda: rtt_ms(a, "py1"), 60, "serf rtt py1", blocking=True)
            assert math.isfinite(ms)
            assert ms > 0.0
            between = await until(
                lambda: rtt_ms(a, "py1", "py2"), 60, "serf rtt py1 py2", blocking=True
            )
            assert math.isfinite(between)
            assert between > 0.0
            # Our view of the serf agents, from theirs.
            for name in ("a", "b"):
                est = await until(lambda n=name: py1.rtt(n), 60, f"py1's estimate to {name}")
                assert math.isfinite(est)
                assert est > 0.0
            coord_a = py1.coordinate("a")
            assert coord_a is not None
            assert len(coord_a.vec) == 8
            assert not any(k.startswith("serf_coordinate") for k in py1.drops)
            assert not any(k.startswith("serf_coordinate") for k in py2.drops)

            # The coordinate serf holds for us is the one we sent (or a later one).
            def serf_holds_a_moved_coordinate() -> bool:
                with a.rpc() as rpc:
                    reply = rpc.call("get-coordinate", {"Node": "py1"}, reply=True)
                vec = reply["Coord"]["Vec"]
                return bool(reply["Ok"]) and len(vec) == 8 and any(v != 0.0 for v in vec)

            await until(serf_holds_a_moved_coordinate, 60, "serf's coordinate of py1",
                        blocking=True)
        assert coordinate_complaints(cluster) == []

    asyncio.run(scenario())


def test_serf_rtt_has_nothing_for_an_unknown_member(cluster: Cluster) -> None:
    """The comparison the test above depends on: serf's answer without a coordinate."""
    a = cluster.start_serf("a")
    code, out = serf_rtt(a, "nobody")
    assert code == 1
    assert 'Could not find a coordinate for node "nobody"' in out
