"""Warm-started clusters (`warm_cluster`): the same protocol as after a settled join."""

from __future__ import annotations

from sim_helpers import EventLog, replay

from swimguard.config import Config
from swimguard.protocol.members import MemberState
from swimguard.protocol.node import Node
from swimguard.sim.cluster import SimCluster
from swimguard.sim.invariants import attach_all, check_converged, convergence_gaps
from swimguard.sim.scenarios import start_cluster, warm_cluster

T = "test_sim_warm.py"


def _warm(n: int, seed: int, trace: bool = False) -> SimCluster:
    c = warm_cluster(n, seed=seed, config=Config.lan(), trace=trace, replay_hint=replay(T, seed))
    attach_all(c, Config.lan().gossip_to_the_dead_time)
    return c


def _shared(c: SimCluster) -> int:
    """Records held by more than one member table (sharing is storage: no output shows it)."""
    tables = [m.node._table for m in c.members if isinstance(m.node, Node)]
    return sum(rec.shared for t in tables for rec in t.order)


def test_warm_cluster_starts_converged_and_matches_a_settled_join(sim_seed: int) -> None:
    warm = _warm(30, sim_seed)
    assert not convergence_gaps(warm)
    cold = start_cluster(30, seed=sim_seed, settle=30.0)
    assert not convergence_gaps(cold)
    for name in ("m0", "m7", "m29"):
        w = {m.name: (m.state, m.incarnation, m.addr) for m in warm.view(name).values()}
        c = {m.name: (m.state, m.incarnation, m.addr) for m in cold.view(name).values()}
        assert w == c


def test_warm_cluster_detects_a_crash_everywhere_and_stays_consistent(sim_seed: int) -> None:
    c = _warm(40, sim_seed)
    log = EventLog()
    c.add_listener(log)
    c.run_for(20)
    before = _shared(c)
    assert before > 40 * 30  # almost every record is still shared
    c.crash("m5")
    c.update_meta("m9", b"v2")
    c.run_for(60)
    failed = {r[1] for r in log.of("MemberFailed", "m5")}
    assert failed == {f"m{i}" for i in range(40) if i != 5}
    # m9 reports its own update too; m5 crashed before it could hear of it.
    assert {r[1] for r in log.of("MemberUpdated", "m9")} == failed
    assert not [r for r in log.of("MemberFailed") if r[3] != "m5"]
    # Every live table copied m5's record and m9's (m9's own was never shared); nothing else.
    assert _shared(c) == before - (38 * 2 + 1)
    for i in range(40):  # dead, or already reaped after gossip_to_the_dead_time
        m5 = c.view(f"m{i}").get("m5")
        assert i == 5 or m5 is None or m5.state is MemberState.DEAD
    check_converged(c)


def test_warm_cluster_same_seed_same_trace(sim_seed: int) -> None:
    def run(seed: int) -> str:
        c = _warm(25, seed, trace=True)
        c.run_for(5)
        c.crash("m3")
        c.leave("m4")
        c.run_for(30)
        return c.trace_digest()

    first = run(sim_seed)
    assert run(sim_seed) == first
    assert run(sim_seed + 1) != first
