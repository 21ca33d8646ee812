"""`StatusTable`: Serf's member status rules under a fake clock."""

from __future__ import annotations

import random

import pytest

from swimguard.protocol.members import Member, MemberState
from swimguard.serf.status import SerfStatus, StatusTable, StatusTimes
from swimguard.serf.tags import encode_tags

A = Member("a", ("10.0.0.1", 7946), 1, MemberState.ALIVE, encode_tags({"role": "web"}))
B = Member("b", ("10.0.0.2", 7946), 1, MemberState.ALIVE, encode_tags({"role": "db"}))
TIMES = StatusTimes(reconnect_interval=30.0, reconnect_timeout=100.0, tombstone_timeout=50.0)


def table() -> StatusTable:
    t = StatusTable(TIMES)
    t.alive(A, leaving=False, now=0.0)
    t.alive(B, leaving=False, now=0.0)
    return t


def status(t: StatusTable, name: str) -> SerfStatus | None:
    m = t.get(name)
    return None if m is None else m.status


def test_alive_member_shows_tags_versions_and_status() -> None:
    m = table().get("a")
    assert m is not None
    assert m.status is SerfStatus.ALIVE
    assert m.tags == {"role": "web"}
    assert m.protocol == (1, 5, 2)
    assert m.delegate == (2, 5, 5)


def test_dead_is_failed_then_reaped_after_reconnect_timeout() -> None:
    t = table()
    t.gone(A, left=False, now=10.0)
    assert status(t, "a") is SerfStatus.FAILED
    reaped, _ = t.expire(now=109.9, rng=random.Random(1))
    assert reaped == []
    reaped, _ = t.expire(now=110.0, rng=random.Random(1))
    assert [m.name for m in reaped] == ["a"]
    assert t.get("a") is None


def test_leave_intent_then_dead_is_left_and_tombstone_timeout_applies() -> None:
    t = table()
    change, erased = t.leave_intent("a", prune=False, now=5.0)
    assert change is not None
    assert change.previous is SerfStatus.ALIVE
    assert erased is None
    assert status(t, "a") is SerfStatus.LEAVING
    t.gone(A, left=False, now=10.0)
    assert status(t, "a") is SerfStatus.LEFT
    assert t.next_deadline() == 60.0
    reaped, _ = t.expire(now=60.0, rng=random.Random(1))
    assert [m.name for m in reaped] == ["a"]


def test_memberlist_left_is_left() -> None:
    t = table()
    t.gone(A, left=True, now=1.0)
    assert status(t, "a") is SerfStatus.LEFT


def test_force_leave_of_failed_member_makes_it_left_and_prune_erases() -> None:
    t = table()
    t.gone(A, left=False, now=0.0)
    change, erased = t.leave_intent("a", prune=False, now=20.0)
    assert change is not None
    assert change.member.status is SerfStatus.LEFT
    assert change.previous is SerfStatus.FAILED
    # The tombstone counts from the failure, as Serf's leaveTime does.
    assert t.expire(now=49.9, rng=random.Random(1))[0] == []
    assert [m.name for m in t.expire(now=50.0, rng=random.Random(1))[0]] == ["a"]
    _, erased = t.leave_intent("b", prune=True, now=51.0)
    assert erased is not None
    assert erased.name == "b"
    assert t.get("b") is None


def test_leave_intent_about_unknown_member_changes_nothing() -> None:
    t = table()
    assert t.leave_intent("zz", prune=True, now=0.0) == (None, None)


def test_rejoin_clears_failure_and_reap_deadline() -> None:
    t = table()
    t.gone(A, left=False, now=0.0)
    t.alive(A, leaving=False, now=5.0)
    assert status(t, "a") is SerfStatus.ALIVE
    reaped, _ = t.expire(now=1000.0, rng=random.Random(1))
    assert reaped == []


def test_new_member_with_buffered_leave_intent_is_leaving() -> None:
    t = StatusTable(TIMES)
    t.alive(A, leaving=True, now=0.0)
    assert status(t, "a") is SerfStatus.LEAVING
    t.alive(A, leaving=False, now=1.0)  # an update while leaving
    assert status(t, "a") is SerfStatus.LEAVING


def test_reconnect_picks_failed_member_every_interval() -> None:
    t = StatusTable(TIMES)
    t.alive(A, leaving=False, now=0.0)
    t.alive(B, leaving=False, now=0.0)
    t.gone(B, left=False, now=0.0)
    assert t.next_deadline() == 30.0
    # one alive (a), one failed (b): probability 1
    _, retry = t.expire(now=30.0, rng=random.Random(3))
    assert retry == B.addr
    assert t.next_deadline() == 60.0
    t.alive(B, leaving=False, now=40.0)
    _, retry = t.expire(now=60.0, rng=random.Random(3))
    assert retry is None
    assert t.next_deadline() is None  # nothing failed: no more reconnect ticks


def test_filters_status_tags_name_anchored() -> None:
    t = table()
    t.gone(B, left=False, now=0.0)
    assert [m.name for m in t.members(status=SerfStatus.FAILED)] == ["b"]
    assert [m.name for m in t.members(status=[SerfStatus.ALIVE, SerfStatus.FAILED])] == [
        "a",
        "b",
    ]
    assert [m.name for m in t.members(tags={"role": "we"})] == []  # anchored like Serf
    assert [m.name for m in t.members(tags={"role": "w.*"})] == ["a"]
    assert [m.name for m in t.members(tags={"missing": ".*"})] == []
    assert [m.name for m in t.members(name="[ab]")] == ["a", "b"]
    with pytest.raises(ValueError, match="bad regexp"):
        t.members(name="(")


def test_table_bound_evicts_oldest_gone_member() -> None:
    t = StatusTable(TIMES, max_members=2)
    t.alive(A, leaving=False, now=0.0)
    t.gone(A, left=False, now=0.0)
    t.alive(B, leaving=False, now=0.0)
    c = Member("c", ("10.0.0.3", 7946), 1, MemberState.ALIVE)
    t.alive(c, leaving=False, now=0.0)
    assert t.get("a") is None
    assert len(t) == 2
    assert t.drops == {"status_table_full": 1}


def test_times_are_validated() -> None:
    with pytest.raises(ValueError):
        StatusTimes(reconnect_interval=0)
    with pytest.raises(ValueError):
        StatusTimes(tombstone_timeout=float("nan"))
