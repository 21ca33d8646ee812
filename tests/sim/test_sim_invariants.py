"""The invariant checkers catch what they claim to catch (fed synthetic events)."""

from __future__ import annotations

import random

import pytest
from sim_fakes import FakeNode

from swimguard.protocol.events import MemberFailed, MemberJoined, MemberSuspected
from swimguard.protocol.members import Member, MemberState
from swimguard.protocol.outgoing import Address
from swimguard.sim.cluster import SimCluster
from swimguard.sim.invariants import (
    BoundedQueues,
    IncarnationMonotonic,
    InvariantViolation,
    NoResurrection,
    check_converged,
)


def fake(name: str, addr: Address, rng: random.Random, *, now: float) -> FakeNode:
    return FakeNode(name, addr, rng, now=now)


def setup() -> SimCluster:
    c = SimCluster(fake, seed=9, replay_hint="swimguard sim run x --seed 9")
    c.add_member("m0")
    c.add_member("m1", ["m0"])
    return c


def member(inc: int, state: MemberState = MemberState.ALIVE) -> Member:
    return Member("m1", ("10.0.0.1", 7946), inc, state)


def test_incarnation_going_down_is_caught_with_seed_and_replay() -> None:
    c = setup()
    check = IncarnationMonotonic(c)
    observer = c.member("m0")
    check.on_events(1.0, observer, [MemberJoined(member(3))], "input")
    check.on_events(2.0, observer, [MemberSuspected(member(3, MemberState.SUSPECT))], "input")
    with pytest.raises(InvariantViolation) as info:
        check.on_events(3.0, observer, [MemberSuspected(member(2, MemberState.SUSPECT))], "input")
    assert "seed=9" in str(info.value)
    assert "swimguard sim run x --seed 9" in str(info.value)


def test_a_reaped_member_may_come_back_at_a_lower_incarnation() -> None:
    # Seen in a 300 s Lifeguard run: m17 declared m80 dead at incarnation 3, reaped it after
    # gossip_to_the_dead_time, then stale gossip brought m80 back as new at incarnation 2.
    c = setup()
    check = IncarnationMonotonic(c, forget_after=30.0)
    observer = c.member("m0")
    check.on_events(1.0, observer, [MemberJoined(member(3))], "input")
    check.on_events(2.0, observer, [MemberFailed(member(3, MemberState.DEAD))], "timer")
    with pytest.raises(InvariantViolation, match="from incarnation 3 to 2"):
        check.on_events(20.0, observer, [MemberJoined(member(2))], "input")  # not yet reaped
    check.on_events(40.0, observer, [MemberJoined(member(2))], "input")
    with pytest.raises(InvariantViolation, match="from incarnation 2 to 1"):
        check.on_events(41.0, observer, [MemberSuspected(member(1, MemberState.SUSPECT))], "input")


def test_resurrection_without_higher_incarnation_is_caught() -> None:
    c = setup()
    check = NoResurrection(c, forget_after=30.0)
    observer = c.member("m0")
    check.on_events(1.0, observer, [MemberFailed(member(4, MemberState.DEAD))], "timer")
    check.on_events(2.0, observer, [MemberJoined(member(5))], "input")  # refuted: fine
    check.on_events(3.0, observer, [MemberFailed(member(5, MemberState.DEAD))], "timer")
    with pytest.raises(InvariantViolation, match="resurrected"):
        check.on_events(4.0, observer, [MemberJoined(member(5))], "input")
    # After the reap window the member may come back as new.
    check.on_events(5.0, observer, [MemberFailed(member(6, MemberState.DEAD))], "timer")
    check.on_events(40.0, observer, [MemberJoined(member(1))], "input")


def test_bounds_and_convergence_checks_fail_when_violated() -> None:
    c = setup()
    BoundedQueues(c, max_in_flight=10_000).check()
    assert len(c.queue) > 0  # the members' timers at least
    with pytest.raises(InvariantViolation, match="exceed"):
        BoundedQueues(c, max_in_flight=0).check()
    # FakeNode members() only lists itself, so the views disagree with reality.
    with pytest.raises(InvariantViolation, match="not converged"):
        check_converged(c)
