"""False declarations put in classes by what the declared member was doing (issue 15, point 2).

never slowed / slowed but every input read within the suspicion timeout used (could have
refuted) / some input waited at least that long (unresponsive: defensible).
"""

from __future__ import annotations

import random

from sim_fakes import FakeNode

from swimguard.protocol.events import MemberFailed, MemberSuspected
from swimguard.protocol.members import Member, MemberState
from swimguard.protocol.outgoing import Address
from swimguard.sim.cluster import SimCluster
from swimguard.sim.experiment import experiment_config
from swimguard.sim.invariants import attach_all
from swimguard.sim.report import FailureMetrics
from swimguard.sim.scenarios import start_cluster
from swimguard.sim.slow import parse_slow


def fake(name: str, addr: Address, rng: random.Random, *, now: float) -> FakeNode:
    return FakeNode(name, addr, rng, now=now)


def fake_cluster(n: int) -> SimCluster:
    cluster = SimCluster(fake, seed=1)
    cluster.add_member("m0")
    for i in range(1, n):
        cluster.add_member(f"m{i}", ["m0"])
    return cluster


def about(c: SimCluster, name: str, state: MemberState) -> Member:
    return Member(name, c.member(name).addr, 1, state)


def test_lags_are_kept_in_arrival_order_and_queried_by_window() -> None:
    c = fake_cluster(2)
    m = c.member("m1")
    m.record_lag(1.0, 0.5)
    m.record_lag(5.0, 4.0)
    m.record_lag(3.0, 2.0)  # a stream segment recorded before a later datagram arrived
    m.record_lag(6.0, 0.0)  # no wait: not an entry
    assert m.lag_times == [1.0, 3.0, 5.0]
    assert m.max_input_lag(0.0, 4.0) == 2.0
    assert m.max_input_lag(3.0, 5.0) == 4.0
    assert m.max_input_lag(5.5, 9.0) == 0.0


def test_each_false_declaration_gets_one_class() -> None:
    c = fake_cluster(5)
    metrics = FailureMetrics(c)
    for name in ("m3", "m4"):
        c.member(name).ever_slow = True
    c.member("m3").record_lag(2.0, 3.0)  # read 3 s late: within a 5 s timeout
    c.member("m4").record_lag(2.0, 6.0)  # read 6 s late: longer than the 5 s timeout
    c.member("m4").record_lag(0.5, 60.0)  # before the window: does not count
    for subject in ("m2", "m3", "m4"):
        metrics.on_events(1.0, c.member("m0"), [MemberSuspected(about(c, subject,
                          MemberState.SUSPECT))], "input")
        metrics.on_events(6.0, c.member("m0"), [MemberFailed(about(c, subject,
                          MemberState.DEAD))], "timer")
    assert (metrics.fp_never_slowed, metrics.fp_responsive, metrics.fp_unresponsive) == (1, 1, 1)
    assert metrics.fp_total == 3
    # m1 suspected m3 only at 5.5: its 0.5 s timeout was shorter than m3's 3 s lag, but the
    # lag was of an input that arrived before m1's window opened.
    metrics.on_events(5.5, c.member("m1"), [MemberSuspected(about(c, "m3",
                      MemberState.SUSPECT))], "input")
    c.member("m3").record_lag(5.7, 1.0)
    metrics.on_events(6.0, c.member("m1"), [MemberFailed(about(c, "m3", MemberState.DEAD))],
                      "timer")
    assert (metrics.fp_responsive, metrics.fp_unresponsive) == (1, 2)


def test_classes_add_up_in_a_real_run() -> None:
    c = start_cluster(12, seed=1, config=experiment_config("swim", alpha=4), settle=30.0)
    attach_all(c)
    metrics = FailureMetrics(c, start=c.now)
    c.add_listener(metrics)
    c.set_slow("m5", parse_slow("exp:2"))
    c.run_for(40.0)
    assert metrics.fp_total > 0
    about_m5 = sum(1 for _, _, subject in metrics.fp_log if subject == "m5")
    assert metrics.fp_responsive + metrics.fp_unresponsive == about_m5
    assert metrics.fp_never_slowed + about_m5 == metrics.fp_total
    # A FIFO of Exp(2 s) waits builds lags of many seconds: some declarations are defensible.
    assert metrics.fp_unresponsive > 0
