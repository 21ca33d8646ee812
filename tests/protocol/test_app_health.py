"""Application health reports folded into the Lifeguard score (`Awareness.report_app`)."""

from __future__ import annotations

import pytest
from node_helpers import add_members, make_node

from swimguard.config import Config
from swimguard.protocol.awareness import Awareness
from swimguard.protocol.history import HealthCause

PROBE = HealthCause.PROBE_FAILED  # the cause does not change the arithmetic


def test_a_report_adds_points_that_decay_like_other_evidence() -> None:
    a = Awareness(8)
    a.report_app(3, now=0.0)
    assert (a.score, a.app_points) == (3, 3)
    a.apply_delta(-1, cause=PROBE, now=0.0)  # a successful probe
    assert (a.score, a.app_points) == (2, 2)
    a.report_app(1, now=0.0)  # trouble lasts: the application reports again
    assert (a.score, a.app_points) == (3, 3)


def test_zero_withdraws_only_the_applications_points() -> None:
    a = Awareness(8)
    a.apply_delta(2, cause=PROBE, now=0.0)  # missed nacks
    a.report_app(3, now=0.0)
    assert (a.score, a.app_points) == (5, 3)
    a.report_app(0, now=0.0)
    assert (a.score, a.app_points) == (2, 0)
    a.report_app(0, now=0.0)  # nothing left to withdraw
    assert a.score == 2


def test_clamped_points_are_not_owed() -> None:
    a = Awareness(8)
    a.apply_delta(5, cause=PROBE, now=0.0)
    a.report_app(7, now=0.0)  # only 2 fit under the ceiling of 7
    assert (a.score, a.app_points) == (7, 2)
    a.report_app(0, now=0.0)
    assert a.score == 5


def test_node_report_health_scales_the_next_probe() -> None:
    n = make_node(Config.lan())
    add_members(n, "b")
    n.report_health(3, now=0.0)
    assert n.health_score == 3
    assert n.health_from_app == 3
    assert n.stats.health_reports == 1
    n.handle_timeout(now=10.0)  # the first probe runs on a 4x interval
    assert n.stats.degraded_probe == 1
    n.report_health(0, now=10.0)
    assert (n.health_score, n.health_from_app) == (0, 0)


@pytest.mark.parametrize("bad", [-1, 8, True, 1.5, "2"])
def test_node_refuses_scores_outside_the_range(bad: object) -> None:
    n = make_node(Config.lan())  # awareness_max_multiplier 8: scores 0..7
    with pytest.raises(ValueError, match="health score"):
        n.report_health(bad, now=0.0)  # type: ignore[arg-type]
    assert n.stats.health_reports == 0
