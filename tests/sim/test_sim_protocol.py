"""The real core in the simulator: determinism, detection, refutation, partitions, leave."""

from __future__ import annotations

import pytest
from sim_helpers import EventLog, cluster

from swimguard.protocol.members import Member, MemberState
from swimguard.sim.distributions import parse_distribution
from swimguard.sim.invariants import BoundedQueues, check_converged, convergence_gaps
from swimguard.sim.network import LinkModel
from swimguard.sim.slow import SlowSpec

T = "test_sim_protocol.py"


def _gone(view: dict[str, Member], name: str) -> bool:
    """Dead, left, or already reaped from the member table."""
    return name not in view or view[name].state in (MemberState.DEAD, MemberState.LEFT)


def _busy_run(seed: int) -> str:
    link = LinkModel(latency=parse_distribution("exp:0.005"), loss=0.05, duplicate=0.02)
    c = cluster(10, seed, T, link=link, trace=True)
    c.set_slow("m4", SlowSpec(parse_distribution("exp:0.8")))
    c.at(c.now + 5, c.crash, "m7")
    c.at(c.now + 8, c.leave, "m8")
    c.at(c.now + 20, c.restart, "m7", ["m0"])
    c.run_for(40)
    return c.trace_digest()


def test_same_seed_gives_identical_trace(sim_seed: int) -> None:
    first = _busy_run(sim_seed)
    assert _busy_run(sim_seed) == first
    assert _busy_run(sim_seed + 1) != first


def test_crash_is_detected_by_everyone(sim_seed: int) -> None:
    c = cluster(10, sim_seed, T)
    log = EventLog()
    c.add_listener(log)
    crashed_at = c.now
    c.crash("m3")
    c.run_for(40)
    failed = log.of("MemberFailed", "m3")
    observers = {r[1] for r in failed}
    assert observers == {f"m{i}" for i in range(10) if i != 3}
    first = min(r[0] for r in failed) - crashed_at
    last = max(r[0] for r in failed) - crashed_at
    # LAN at n=10: min suspicion 4 s, max 24 s; detection needs a probe first (<= ~2n periods).
    assert 1.0 < first < 26.0
    assert last < 30.0
    assert not [r for r in log.of("MemberFailed") if r[3] != "m3"]
    check_converged(c)


def test_short_isolation_is_refuted_not_declared(sim_seed: int) -> None:
    c = cluster(10, sim_seed, T)
    log = EventLog()
    c.add_listener(log)
    c.network.partition([[c.member("m5").index]])
    c.run_for(2.5)
    c.network.heal()
    c.run_for(30)
    assert log.of("MemberSuspected", "m5"), "isolation should have raised a suspicion"
    # m5 refuted in time. (m5 itself may still declare a peer it suspected while cut off:
    # its suspect gossip was lost, so nobody told that peer to refute - memberlist does too.)
    assert not log.of("MemberFailed", "m5")
    assert c.run_until_true(lambda: not convergence_gaps(c), c.now + 30, 0.5)
    views = [c.view(f"m{i}")["m5"] for i in range(10) if i != 5]
    assert all(v.state is MemberState.ALIVE and v.incarnation >= 1 for v in views)


def test_partition_heals_after_rejoin(sim_seed: int) -> None:
    c = cluster(10, sim_seed, T)
    left = [c.member(f"m{i}").index for i in range(5)]
    c.network.partition([left])
    c.run_for(40)  # long enough for each side to declare the other dead (and reap some)
    assert all(_gone(c.view("m0"), f"m{i}") for i in range(5, 10))
    assert all(_gone(c.view("m9"), f"m{i}") for i in range(5))
    c.network.heal()
    # memberlist never probes the dead; Serf's reconnect (a join) is what merges the sides.
    c.call("m0", lambda node, now: node.join([c.member("m7").addr], now=now))
    assert c.run_until_true(lambda: not convergence_gaps(c), c.now + 30, 0.5)
    check_converged(c)


def test_graceful_leave_is_not_a_failure(sim_seed: int) -> None:
    c = cluster(8, sim_seed, T)
    log = EventLog()
    c.add_listener(log)
    c.leave("m2")
    c.run_for(10)
    assert c.member("m2").state == "left"
    # The leave spreads by gossip with a retransmit limit, so a member may miss it and only
    # learn through its own probe; nobody may think m2 crashed while it was running.
    assert len({r[1] for r in log.of("MemberLeft", "m2")}) >= 5
    assert not [r for r in log.of("MemberFailed") if r[0] < c.member("m2").down_at]  # type: ignore[operator]
    c.run_for(40)
    assert all(_gone(c.view(f"m{i}"), "m2") for i in range(8) if i != 2)
    check_converged(c)


def test_restart_with_same_name_rejoins(sim_seed: int) -> None:
    c = cluster(8, sim_seed, T)
    c.crash("m6")
    c.run_for(40)
    assert _gone(c.view("m0"), "m6")
    c.restart("m6", ["m0"])
    assert c.run_until_true(lambda: not convergence_gaps(c), c.now + 30, 0.5)
    assert c.view("m1")["m6"].incarnation > 0


def test_lossy_network_stays_bounded_and_consistent(sim_seed: int) -> None:
    link = LinkModel(latency=parse_distribution("exp:0.01"), loss=0.1, duplicate=0.05)
    c = cluster(12, sim_seed, T, link=link)
    bounds = BoundedQueues(c)
    bounds.every(5.0, c.now + 60)
    c.at(c.now + 10, c.crash, "m9")
    c.run_for(60)
    assert bounds.peak_in_flight > 0
    gaps = convergence_gaps(c)
    assert all("m9" not in g or "DEAD" not in g for g in gaps)


@pytest.mark.parametrize("n", [3, 30])
def test_join_converges(sim_seed: int, n: int) -> None:
    c = cluster(n, sim_seed, T)
    check_converged(c)
    assert c.now < 30
