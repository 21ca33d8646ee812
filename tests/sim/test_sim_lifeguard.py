"""Each Lifeguard part doing its job against a slow member, in small deterministic clusters.

The slow member m5 processes inputs through one FIFO queue, each waiting an exponential
delay (mean 2 s), and its timers fire late by independent draws: it misses acks that did
arrive and lets suspicion timers run out before it reads the refutations.
"""

from __future__ import annotations

import dataclasses

import pytest

from swimguard.protocol.members import MemberState
from swimguard.protocol.outgoing import Datagram
from swimguard.sim.cluster import SimMember
from swimguard.sim.experiment import experiment_config
from swimguard.sim.invariants import attach_all
from swimguard.sim.report import FailureMetrics
from swimguard.sim.scenarios import start_cluster
from swimguard.sim.slow import parse_slow
from swimguard.wire.messages import Ping, Suspect
from swimguard.wire.packet import decode_packet


@dataclasses.dataclass
class Outcome:
    fp_total: int
    by_slow: int
    about_healthy: int
    health_score: int
    slow_msgs: int


def slow_run(config: str, seed: int, slow: str = "exp:2", duration: float = 60.0) -> Outcome:
    c = start_cluster(12, seed=seed, config=experiment_config(config, alpha=4), settle=30.0)
    attach_all(c)
    metrics = FailureMetrics(c, start=c.now)
    c.add_listener(metrics)
    c.set_slow("m5", parse_slow(slow))
    c.run_for(duration)
    return Outcome(
        fp_total=metrics.fp_total,
        by_slow=sum(1 for _, observer, _ in metrics.fp_log if observer == "m5"),
        about_healthy=metrics.fp_healthy,
        health_score=c.member("m5").node.health_score,
        slow_msgs=c.member("m5").msgs_sent,
    )


@pytest.fixture(scope="module")
def swim() -> Outcome:
    return slow_run("swim", 1)


def test_swim_slow_member_declares_healthy_members_dead(swim: Outcome) -> None:
    assert swim.by_slow >= 5
    assert swim.about_healthy >= 5
    assert swim.health_score == 0


def test_lha_suspicion_keeps_a_lone_suspicion_long(swim: Outcome) -> None:
    lha = slow_run("lha-suspicion", 1)
    # Nobody confirms the slow member's suspicions, so it waits the max timeout and reads
    # the refutation first.
    assert lha.by_slow * 5 <= swim.by_slow


def test_lha_probe_makes_the_slow_member_back_off(swim: Outcome) -> None:
    lha = slow_run("lha-probe", 1)
    assert lha.health_score > 0
    assert lha.slow_msgs < swim.slow_msgs
    assert lha.by_slow * 3 <= swim.by_slow


def test_full_lifeguard_spares_healthy_members(swim: Outcome) -> None:
    lg = slow_run("lifeguard", 1)
    assert lg.about_healthy * 10 <= swim.about_healthy
    assert lg.fp_total < swim.fp_total


def test_loop_lag_input_raises_health_when_timers_are_late() -> None:
    # Inputs and timers shifted by exactly 1 s: the member's own probes still succeed, so
    # only the loop-lag input can tell it is running late.
    plain = slow_run("lifeguard", 2, slow="fixed:1", duration=20.0)
    looplag = slow_run("lifeguard-looplag", 2, slow="fixed:1", duration=20.0)
    assert plain.health_score <= 1  # at most the odd probe lost while the shift began
    assert looplag.health_score >= 5


@pytest.mark.parametrize("config", ["buddy", "swim"])
def test_buddy_pings_to_a_suspect_carry_the_suspicion(config: str) -> None:
    c = start_cluster(8, seed=3, config=experiment_config(config, alpha=4), settle=30.0)
    pings: list[bool] = []  # per ping to a member its prober suspects: carried Suspect?

    def tap(now: float, sender: SimMember, out: Datagram, cause: str) -> None:
        if cause != "timer":
            return  # probes start on the probe timer; relays ping on a request (no buddy)
        messages = decode_packet(out.data)
        for msg in messages:
            if not isinstance(msg, Ping) or not msg.node:
                continue
            view = sender.node.member(msg.node)  # type: ignore[attr-defined]
            if view is not None and view.state is MemberState.SUSPECT:
                pings.append(any(isinstance(m, Suspect) and m.node == msg.node for m in messages))

    c.datagram_tap = tap
    c.network.partition([[c.member("m4").index]])  # m4 unreachable: everyone suspects it
    c.run_for(6)
    assert pings, "some member should have probed the suspected m4"
    if config == "buddy":
        assert all(pings)
    else:
        assert not all(pings)


def deaths_of_slow_member(refresh: float, seed: int = 4) -> tuple[int, int]:
    """(false declarations about m5, m5's refreshes) with m5 reading everything 8 s late."""
    config = dataclasses.replace(
        experiment_config("lifeguard-looplag", alpha=4), slow_refresh_interval=refresh
    )
    c = start_cluster(12, seed=seed, config=config, settle=30.0)
    attach_all(c)
    metrics = FailureMetrics(c, start=c.now)
    c.add_listener(metrics)
    c.set_slow("m5", parse_slow("fixed:8"))  # far beyond the 4.3 s min suspicion timeout
    c.run_for(60.0)
    about_m5 = sum(1 for _, _, subject in metrics.fp_log if subject == "m5")
    return about_m5, c.member("m5").node.refreshes  # type: ignore[attr-defined]


def test_slow_refresh_keeps_a_member_that_reads_late_alive() -> None:
    without, refreshes = deaths_of_slow_member(refresh=0.0)
    assert without >= 10  # it cannot refute in time: declared again and again
    assert refreshes == 0
    declared, refreshes = deaths_of_slow_member(refresh=2.0)
    assert refreshes >= 10
    # What is left falls while its health score is still climbing towards the threshold.
    assert declared * 10 <= without
