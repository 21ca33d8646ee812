"""Self-fencing: a health score held at its maximum `self_fence_after` seconds fences once
(fake clock), and in the simulator the fenced member leaves gracefully."""

from __future__ import annotations

import pytest
from node_helpers import make_node, run_until
from sim_support import add, join_all, names_of, node, node_cluster

from swimguard.config import Config
from swimguard.protocol import MemberFailed, MemberLeft, SelfFenced
from swimguard.protocol.awareness import Awareness
from swimguard.protocol.history import HealthCause
from swimguard.protocol.node import Node


def fenced(n: Node, t_end: float) -> list[tuple[float, SelfFenced]]:
    run = run_until(n, t_end)
    return [(t, e) for t, e in run.events if isinstance(e, SelfFenced)]


def test_off_by_default() -> None:
    n = make_node()
    n.report_health(7, now=0.0)
    assert fenced(n, 3600.0) == []


def test_fences_once_after_the_score_held_its_maximum() -> None:
    n = make_node(Config.lan(self_fence_after=10.0))
    n.report_health(7, now=1.0)  # no peers: nothing decays it
    me = n.explain("a", now=1.0)
    assert me is not None
    assert (me.at_max_since, me.fence_at) == (1.0, 11.0)
    assert fenced(n, 10.9) == []
    assert fenced(n, 11.0) == [(11.0, SelfFenced(score=7, since=1.0, after=10.0))]
    assert fenced(n, 100.0) == []  # once


def test_a_drop_below_the_maximum_restarts_the_wait() -> None:
    n = make_node(Config.lan(self_fence_after=10.0))
    n.report_health(7, now=0.0)
    run_until(n, 5.0)
    n.report_health(0, now=5.0)  # recovered for a moment
    n.report_health(7, now=6.0)
    assert fenced(n, 15.9) == []
    assert fenced(n, 16.0) == [(16.0, SelfFenced(score=7, since=6.0, after=10.0))]


def test_below_the_maximum_never_fences() -> None:
    n = make_node(Config.lan(self_fence_after=1.0))
    n.report_health(6, now=0.0)
    assert fenced(n, 100.0) == []


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"self_fence_after": -1.0}, "self_fence_after"),
        ({"self_fence_after": float("nan")}, "self_fence_after"),
        ({"self_fence_after": 5.0, "awareness_max_multiplier": 1}, "awareness_max_multiplier"),
    ],
)
def test_config_refuses_a_fence_that_cannot_work(overrides: dict[str, float], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Config.lan(**overrides)


def test_sim_a_member_whose_loop_keeps_blocking_fences_and_leaves() -> None:
    cfg = Config.lan(self_fence_after=8.0)
    c, events = node_cluster(cfg, seed=5)
    for name in "abc":
        add(c, name)
    join_all(c)
    c.run_for(5.0)
    start = c.now
    for i in range(12):  # c's loop blocks 2 s in every 2.5 s for 30 s
        c.at(start + 2.5 * i, c.stall, "c", 2.0)
    assert c.run_until_true(
        lambda: any(isinstance(e, SelfFenced) for e in events("c")), start + 30.0)
    (fence,) = [e for e in events("c") if isinstance(e, SelfFenced)]
    assert fence.score >= 6  # at the top, or one ack below it (`protocol.fencing`)
    assert fence.after == 8.0
    assert c.now - fence.since >= 8.0
    # It leaves gracefully: the others see it left, never failed.
    assert c.run_until_true(
        lambda: all("c" in names_of(node(c, n), "LEFT") for n in "ab"), c.now + 30.0)
    assert c.run_until_true(lambda: not c.member("c").up, c.now + 10.0)  # LeaveCompleted
    for n in "ab":
        assert any(isinstance(e, MemberLeft) and e.member.name == "c" for e in events(n))
        assert not any(isinstance(e, MemberFailed) for e in events(n))
        assert not any(isinstance(e, SelfFenced) for e in events(n))


def test_one_point_below_the_top_keeps_the_clock_two_points_stop_it() -> None:
    a = Awareness(8)
    a.apply_delta(7, cause=HealthCause.LOOP_LAG, now=1.0)
    a.apply_delta(-1, cause=HealthCause.PROBE_OK, now=2.0)  # one ack between two stalls
    a.apply_delta(1, cause=HealthCause.LOOP_LAG, now=3.0)
    assert a.at_max_since == 1.0
    a.apply_delta(-2, cause=HealthCause.PROBE_OK, now=4.0)  # really recovering
    assert a.at_max_since is None
    a.apply_delta(1, cause=HealthCause.LOOP_LAG, now=5.0)  # 6: not back at the top yet
    assert a.at_max_since is None
    a.apply_delta(1, cause=HealthCause.LOOP_LAG, now=6.0)
    assert a.at_max_since == 6.0


def test_a_score_that_can_only_reach_one_is_strict() -> None:
    a = Awareness(2)
    a.apply_delta(1, cause=HealthCause.LOOP_LAG, now=1.0)
    assert a.at_max_since == 1.0
    a.apply_delta(-1, cause=HealthCause.PROBE_OK, now=2.0)
    assert a.at_max_since is None


def test_a_member_that_left_does_not_fence() -> None:
    n = make_node(Config.lan(self_fence_after=10.0))
    n.report_health(7, now=0.0)
    n.leave(1.0, now=1.0)
    assert fenced(n, 100.0) == []
