"""`Coalescer`: Serf agent's member and user event coalescing, under a fake clock."""

from __future__ import annotations

import pytest

from swimguard.protocol.events import MemberFailed, MemberJoined, MemberUpdated, UserMessage
from swimguard.protocol.members import Member, MemberState
from swimguard.serf.coalesce import SERF_AGENT_COALESCE, Coalesce, Coalescer
from swimguard.serf.events import UserEventReceived


def member(name: str, inc: int = 1) -> Member:
    return Member(name, ("10.0.0.1", 7946), inc, MemberState.ALIVE)


def test_member_events_wait_for_quiet_and_keep_the_latest_per_member() -> None:
    c = Coalescer(SERF_AGENT_COALESCE)
    assert c.add(MemberJoined(member("a")), now=0.0)
    assert c.add(MemberJoined(member("b")), now=0.5)
    assert c.add(MemberFailed(member("a")), now=0.9)
    assert c.next_deadline() == 1.9  # 1 s of quiet
    assert c.flush(now=1.8) == []
    out = c.flush(now=1.9)
    # one record per kind, in Serf's order: joins, then failures
    assert out == [MemberJoined(member("b")), MemberFailed(member("a"))]
    assert c.next_deadline() is None


def test_a_busy_stream_is_flushed_after_the_period() -> None:
    c = Coalescer(SERF_AGENT_COALESCE)
    for i in range(6):  # every 0.5 s, until the flush is due
        c.add(MemberUpdated(member("a", i)), now=i * 0.5)
    assert c.next_deadline() == 3.0  # never 1 s of quiet: the 3 s period ends it
    assert c.flush(now=3.0) == [MemberUpdated(member("a", 5))]


def test_a_repeat_of_the_last_delivered_kind_is_suppressed_but_updates_pass() -> None:
    c = Coalescer(SERF_AGENT_COALESCE)
    c.add(MemberJoined(member("a")), now=0.0)
    assert c.flush(now=1.0) == [MemberJoined(member("a"))]
    c.add(MemberJoined(member("a", 2)), now=2.0)
    assert c.flush(now=3.0) == []
    c.add(MemberUpdated(member("a", 3)), now=4.0)
    assert c.flush(now=5.0) == [MemberUpdated(member("a", 3))]
    c.add(MemberUpdated(member("a", 4)), now=6.0)
    assert c.flush(now=7.0) == [MemberUpdated(member("a", 4))]


def test_user_events_keep_the_newest_ltime_per_name_and_uncoalesced_pass() -> None:
    c = Coalescer(SERF_AGENT_COALESCE)
    assert c.add(UserEventReceived("deploy", b"v2", 2, True), now=0.0)
    assert c.add(UserEventReceived("deploy", b"v1", 1, True), now=0.1)
    assert c.add(UserEventReceived("other", b"", 3, True), now=0.2)
    assert not c.add(UserEventReceived("ping", b"", 4, False), now=0.3)
    assert not c.add(UserMessage(b"x"), now=0.3)
    assert c.flush(now=1.2) == [
        UserEventReceived("deploy", b"v2", 2, True),
        UserEventReceived("other", b"", 3, True),
    ]


def test_periods_are_validated() -> None:
    with pytest.raises(ValueError, match="quiescent"):
        Coalesce(period=1.0, quiescent=2.0)
    with pytest.raises(ValueError, match="quiescent"):
        Coalesce(user_quiescent=0.0)
