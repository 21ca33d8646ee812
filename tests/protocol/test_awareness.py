"""memberlist awareness_test.go table, plus the loop-lag rule."""

from __future__ import annotations

import pytest

from swimguard.protocol.awareness import Awareness
from swimguard.protocol.history import HealthCause

PROBE = HealthCause.PROBE_FAILED  # the cause does not change the arithmetic

AWARENESS_TABLE = [
    (0, 0, 1.0), (-1, 0, 1.0), (-10, 0, 1.0), (1, 1, 2.0), (-1, 0, 1.0), (10, 7, 8.0),
    (-1, 6, 7.0), (-1, 5, 6.0), (-1, 4, 5.0), (-1, 3, 4.0), (-1, 2, 3.0), (-1, 1, 2.0),
    (-1, 0, 1.0), (-1, 0, 1.0),
]


def test_memberlist_awareness_table() -> None:
    a = Awareness(8)
    for i, (delta, score, timeout) in enumerate(AWARENESS_TABLE):
        a.apply_delta(delta, cause=PROBE, now=float(i))
        assert a.score == score, i
        assert a.scale_timeout(1.0) == timeout, i


def _report(a: Awareness, lag: float, now: float) -> bool:
    return a.report_lag(lag, now=now, threshold=0.25, unit=0.5, decay_period=1.0)


def test_lag_below_threshold_changes_nothing() -> None:
    a = Awareness(8)
    assert not _report(a, 0.2, 0.0)
    assert a.score == 0


@pytest.mark.parametrize(("lag", "score"), [(0.3, 1), (0.5, 1), (0.51, 2), (1.4, 3), (60.0, 7)])
def test_lag_raises_by_whole_probe_timeouts(lag: float, score: int) -> None:
    a = Awareness(8)
    assert _report(a, lag, 0.0)
    assert a.score == score
    assert a.lag_debt == score


def test_on_time_firing_pays_back_lag_debt_once_per_period() -> None:
    a = Awareness(8)
    _report(a, 1.4, 10.0)  # score 3
    _report(a, 0.0, 10.5)
    assert a.score == 3  # not a whole period yet
    _report(a, 0.0, 11.0)
    assert a.score == 2
    _report(a, 0.0, 11.2)
    assert a.score == 2
    for t in (12.0, 13.0):
        _report(a, 0.0, t)
    assert a.score == 0
    assert a.lag_debt == 0
    _report(a, 0.0, 20.0)
    assert a.score == 0


def test_lag_debt_never_removes_probe_penalties() -> None:
    a = Awareness(8)
    a.apply_delta(2, cause=PROBE, now=0.0)  # two failed probes
    _report(a, 0.4, 0.0)  # +1 from lag
    assert a.score == 3
    for t in (1.0, 2.0, 3.0, 4.0):
        _report(a, 0.0, t)
    assert a.score == 2
    a.apply_delta(-5, cause=PROBE, now=0.0)
    assert a.lag_debt == 0


def test_a_new_stall_restarts_the_decay_clock() -> None:
    a = Awareness(8)
    _report(a, 0.4, 0.0)
    _report(a, 0.4, 0.9)
    _report(a, 0.0, 1.5)
    assert a.score == 2  # 1.5 s after the first stall but only 0.6 s after the second
    _report(a, 0.0, 1.95)
    assert a.score == 1
