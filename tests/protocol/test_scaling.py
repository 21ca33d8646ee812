"""memberlist util_test.go tables for the cluster-size formulas."""

from __future__ import annotations

import pytest

from swimguard.protocol.scaling import push_pull_scale, retransmit_limit, suspicion_timeout


@pytest.mark.parametrize(
    ("n", "expected"),
    [(5, 1.0), (10, 1.0), (50, 1.698), (100, 2.0), (500, 2.698), (1000, 3.0)],
)
def test_suspicion_timeout_table(n: int, expected: float) -> None:
    assert suspicion_timeout(3, n, 1.0) / 3 == pytest.approx(expected, abs=1e-9)


def test_suspicion_timeout_lan_figures() -> None:
    # research note §3: LAN min suspicion at n=100 is 8 s, at n=10,000 16 s.
    assert suspicion_timeout(4, 100, 1.0) == pytest.approx(8.0)
    assert suspicion_timeout(4, 10_000, 1.0) == pytest.approx(16.0)
    assert suspicion_timeout(4, 0, 1.0) == pytest.approx(4.0)


@pytest.mark.parametrize(("mult", "n", "expected"), [(3, 0, 0), (3, 1, 3), (3, 99, 6), (4, 9, 4),
                                                     (4, 10, 8), (1, 10, 2)])
def test_retransmit_limit_table(mult: int, n: int, expected: int) -> None:
    assert retransmit_limit(mult, n) == expected


def test_push_pull_scale_table() -> None:
    for n in range(33):
        assert push_pull_scale(1.0, n) == 1.0
    for n in range(33, 65):
        assert push_pull_scale(1.0, n) == 2.0
    for n in range(65, 129):
        assert push_pull_scale(1.0, n) == 3.0
    assert push_pull_scale(30.0, 1000) == 180.0
