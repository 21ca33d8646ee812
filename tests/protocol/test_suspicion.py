"""memberlist suspicion_test.go tables, on a fake clock."""

from __future__ import annotations

import pytest

from swimguard.protocol.suspicion import Suspicion, remaining_suspicion_time


@pytest.mark.parametrize(
    ("n", "k", "elapsed", "expected"),
    [(0, 3, 0.0, 30.0), (1, 3, 2.0, 14.0), (2, 3, 3.0, 4.81), (3, 3, 4.0, -2.0),
     (4, 3, 5.0, -3.0), (5, 3, 10.0, -8.0)],
)
def test_remaining_suspicion_time(n: int, k: int, elapsed: float, expected: float) -> None:
    assert remaining_suspicion_time(n, k, elapsed, 2.0, 30.0) == pytest.approx(expected, abs=1e-9)


# (confirmations (from, new info?), total timeout) with k=3, min 0.5 s, max 2 s, origin "me".
TIMER_CASES = [
    ([], 2.0),
    ([("me", False), ("foo", True)], 1.25),
    ([("me", False), ("foo", True), ("foo", False), ("foo", False)], 1.25),
    ([("me", False), ("foo", True), ("bar", True)], 0.811),  # Go: 810 ms +- 25 ms fudge
    ([("me", False), ("foo", True), ("bar", True), ("baz", True)], 0.5),
    ([("me", False), ("foo", True), ("bar", True), ("baz", True), ("zoo", False)], 0.5),
]


@pytest.mark.parametrize(("confirmations", "expected"), TIMER_CASES)
def test_suspicion_timer(confirmations: list[tuple[str, bool]], expected: float) -> None:
    s = Suspicion("me", 3, 0.5, 2.0, now=100.0)
    for who, new in confirmations:
        assert s.confirm(who) is new, who
    assert s.deadline == pytest.approx(100.0 + expected, abs=1e-9)
    assert s.n == sum(1 for _, new in confirmations if new)


def test_no_confirmations_expected_starts_at_min() -> None:
    s = Suspicion("me", 0, 4.0, 24.0, now=0.0)
    assert s.deadline == 4.0
    assert not s.confirm("other")
    assert s.deadline == 4.0


def test_lan_three_node_numbers() -> None:
    # LAN n=100, k=2: lone 48 s, one confirmation 48 - 40 ln2/ln3 = 22.762 s, two 8 s.
    s = Suspicion("a", 2, 8.0, 48.0, now=0.0)
    assert s.deadline == 48.0
    s.confirm("b")
    assert s.deadline == pytest.approx(22.762, abs=1e-9)
    s.confirm("c")
    assert s.deadline == 8.0
