"""Gray failure in a mixed cluster: one member repeatedly SIGSTOPped for 0.5-2 s over 60 s.

4 serf agents + 4 swimguard agent processes, LAN profile on both sides (serf's default).
The paused member is a swimguard agent: the Python process whose timers and sockets stall.
Passing means no never-paused member is declared failed by anyone (serf logs and RPC,
swimguard JSON events), including by the paused member after each resume.
"""

from __future__ import annotations

import random
import signal
import time

import pytest
from bench.serf_harness import Cluster, wait_for

pytestmark = [pytest.mark.interop, pytest.mark.slow, pytest.mark.timeout(240)]

DURATION = 60.0
TAIL = 8.0


def test_paused_member_does_not_get_healthy_members_declared_failed(cluster: Cluster) -> None:
    rng = random.Random(4)
    s0 = cluster.start_serf("s0", profile="lan")
    serfs = [s0] + [cluster.start_serf(f"s{i}", [s0.addr], profile="lan") for i in range(1, 4)]
    swims = [cluster.start_swim(f"p{i}", [s0.addr], profile="lan") for i in range(4)]
    everyone = {a.name for a in serfs} | {a.name for a in swims}
    wait_for(
        lambda: all(v == dict.fromkeys(everyone, "alive") for v in cluster.serf_views().values()),
        20,
        what="all serf agents see 8 alive",
    )
    wait_for(
        lambda: all(
            {n for n, e in s.view().items() if e in ("member-join", "member-update")} == everyone
            for s in swims
        ),
        20,
        what="all swimguard agents see 8 alive",
    )
    victim = swims[1]
    healthy = everyone - {victim.name}
    start = time.time()
    pauses = 0
    while time.time() - start < DURATION:
        victim.proc.signal(signal.SIGSTOP)
        time.sleep(rng.uniform(0.5, 2.0))
        victim.proc.signal(signal.SIGCONT)
        pauses += 1
        time.sleep(rng.uniform(0.5, 2.0))
    time.sleep(TAIL)

    failed_by_serf = [
        (a.name, line)
        for a in serfs
        for ts, line in a.proc.log.snapshot()
        if ts >= start and "EventMemberFailed" in line
    ]
    failed_by_swim = [
        (a.name, ev["name"])
        for a in swims
        for ev in a.events()
        if ev["_t"] >= start and ev.get("event") == "member-failed"
    ]
    healthy_failed = [
        (who, what)
        for who, what in failed_by_serf + failed_by_swim
        if any(what == h or what.endswith(f"EventMemberFailed: {h} 127.0.0.1") for h in healthy)
    ]
    victim_failed = len(failed_by_serf) + len(failed_by_swim) - len(healthy_failed)
    print(f"\n{pauses} pauses; paused member declared failed {victim_failed} times")
    assert healthy_failed == [], f"healthy members declared failed: {healthy_failed}"
    # every healthy member is still alive everywhere at the end
    for name, view in cluster.serf_views().items():
        assert all(view[h] == "alive" for h in healthy), (name, view)
    for agent in swims:
        # last membership verdict per member (a suspicion that was refuted is not one)
        verdict: dict[str, str] = {}
        for ev in agent.events():
            if ev.get("event") != "member-suspect":
                verdict[ev["name"]] = ev["event"]
        bad = {
            h: verdict.get(h)
            for h in healthy
            if verdict.get(h) not in ("member-join", "member-update")
        }
        assert bad == {}, (agent.name, bad)
    assert victim.proc.alive
