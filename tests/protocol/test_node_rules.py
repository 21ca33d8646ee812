"""memberlist state.go rules (aliveNode, suspectNode, deadNode, mergeState, refute) on one Node."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from node_helpers import (
    IP,
    VSN,
    add_members,
    addr_of,
    alive,
    dead,
    feed,
    make_node,
    push_pull_in,
    run_until,
    sent_messages,
    suspect,
)

from swimguard.config import Config
from swimguard.protocol import (
    Member,
    MemberFailed,
    MemberJoined,
    MemberLeft,
    MemberState,
    MemberSuspected,
    MemberUpdated,
    NameConflict,
)
from swimguard.protocol.node import Node
from swimguard.wire.messages import Alive, Dead, Ping, PushNodeState, Suspect


def _state(node: Node, name: str) -> MemberState:
    m = node.member(name)
    assert m is not None
    return m.state


def _queued(node: Node, *, now: float) -> list[object]:
    """Everything the node has sent or would gossip now.

    The queue is read the way a peer sees it: ten pings from a peer, each ack carrying as
    many queued broadcasts as fit (a ping changes neither the health score nor the table).
    """
    msgs: list[object] = list(sent_messages(node.take_outgoing()))
    for seq in range(10):
        feed(node, Ping(seq_no=10_000 + seq, node=node.name), now=now)
        msgs.extend(sent_messages(node.take_outgoing()))
    return msgs


def _failed_at(node: Node, name: str, until: float = 100.0) -> float | None:
    """When the node declares `name` failed (its peers answer every probe meanwhile)."""
    run = run_until(node, until, answer_pings=True)
    failed = [t for t, e in run.events if isinstance(e, MemberFailed) and e.member.name == name]
    return failed[0] if failed else None


def _refute(node: Node, times: int) -> None:
    """Have the node refute `times` accusations of itself: each costs a health point."""
    for _ in range(times):
        feed(node, suspect(node.name, node.local_member.incarnation))


def test_start_emits_self_join_and_alive_broadcast() -> None:
    import random

    node = Node(Config.lan(), name="a", advertise=("127.0.0.1", 7000), rng=random.Random(1),
                now=5.0)
    events = node.take_events()
    assert [type(e) for e in events] == [MemberJoined]
    assert events[0].member.name == "a"  # type: ignore[union-attr]
    me = node.local_member
    assert me.incarnation == 1
    assert me.state is MemberState.ALIVE
    assert me.vsn == VSN
    assert node.next_deadline() is not None
    assert node.broadcasts_queued == 1  # our own alive, gossiped once peers exist


def test_alive_new_node_joins_then_ignored_when_not_newer() -> None:
    node = make_node()
    feed(node, alive("b", 1))
    ev = node.take_events()
    assert [type(e) for e in ev] == [MemberJoined]
    assert node.member("b") == Member("b", addr_of("b"), 1, MemberState.ALIVE, b"", VSN)
    feed(node, alive("b", 1, meta=b"x"))
    assert node.take_events() == []
    assert node.member("b").meta == b""  # type: ignore[union-attr]


def test_alive_with_new_meta_updates() -> None:
    node = make_node()
    add_members(node, "b")
    feed(node, alive("b", 2, meta=b"role=web"))
    ev = node.take_events()
    assert [type(e) for e in ev] == [MemberUpdated]
    assert ev[0].member.meta == b"role=web"  # type: ignore[union-attr]


def test_alive_cancels_suspicion() -> None:
    node = make_node()
    add_members(node, "b", "c", "d", "e")
    feed(node, suspect("b", 1))
    assert _state(node, "b") is MemberState.SUSPECT
    feed(node, alive("b", 2))
    assert _state(node, "b") is MemberState.ALIVE
    # No failure later.
    node.handle_timeout(now=1000.0)
    assert not any(isinstance(e, MemberFailed) and e.member.name == "b"
                   for e in node.take_events())


def test_name_conflict_is_dropped_and_reported() -> None:
    seen: list[tuple[Member, Member]] = []

    class Hooks:
        def notify_conflict(self, existing: Member, other: Member) -> None:
            seen.append((existing, other))

    node = make_node(hooks=Hooks())
    add_members(node, "b")
    feed(node, alive("b", 5, port=1234))
    ev = node.take_events()
    assert [type(e) for e in ev] == [NameConflict]
    assert seen[0][0].addr == addr_of("b")
    assert seen[0][1].addr == ("127.0.0.1", 1234)
    assert node.member("b").incarnation == 1  # type: ignore[union-attr]
    assert node.drops["name_conflict"] == 1


def test_left_member_may_come_back_from_a_new_address() -> None:
    node = make_node()
    add_members(node, "b")
    feed(node, dead("b", 1, frm="b"))
    assert [type(e) for e in node.take_events()] == [MemberLeft]
    feed(node, alive("b", 1, port=1234))  # same incarnation: address update is accepted
    ev = node.take_events()
    assert [type(e) for e in ev] == [MemberJoined]
    assert node.member("b").addr == ("127.0.0.1", 1234)  # type: ignore[union-attr]


def test_dead_member_reclaim_needs_reclaim_time() -> None:
    node = make_node(Config.lan(dead_node_reclaim_time=10.0))
    add_members(node, "b")
    feed(node, dead("b", 1), now=1.0)
    node.take_events()
    feed(node, alive("b", 2, port=1234), now=5.0)
    assert [type(e) for e in node.take_events()] == [NameConflict]
    feed(node, alive("b", 2, port=1234), now=12.0)
    assert [type(e) for e in node.take_events()] == [MemberJoined]
    # Default (0) never reclaims.
    node = make_node()
    add_members(node, "b")
    feed(node, dead("b", 1), now=1.0)
    feed(node, alive("b", 2, port=1234), now=1e6)
    assert NameConflict in [type(e) for e in node.take_events()]


def test_alive_about_ourselves_is_refuted() -> None:
    node = make_node()
    add_members(node, "b")
    feed(node, alive("a", 7, port=7000))
    me = node.local_member
    assert me.incarnation == 8
    assert node.health_score == 1
    msgs = _queued(node, now=0.0)
    assert any(isinstance(m, Alive) and m.node == "a" and m.incarnation == 8 for m in msgs)


def test_own_alive_echo_is_not_refuted() -> None:
    node = make_node()
    add_members(node, "b")
    feed(node, Alive(incarnation=1, node="a", addr=IP, port=7000, meta=None, vsn=VSN))
    assert node.local_member.incarnation == 1
    assert node.health_score == 0


@pytest.mark.parametrize("accusation", [suspect("a", 3), dead("a", 3)])
def test_suspect_or_dead_about_ourselves_is_refuted(accusation: Suspect | Dead) -> None:
    node = make_node()
    add_members(node, "b")
    feed(node, accusation)
    assert node.local_member.state is MemberState.ALIVE
    assert node.local_member.incarnation == 4
    assert node.health_score == 1


def test_refute_without_lha_probe_keeps_health() -> None:
    node = make_node(Config.lan(lha_probe=False))
    add_members(node, "b")
    feed(node, suspect("a", 1))
    assert node.local_member.incarnation == 2
    assert node.health_score == 0


def test_suspect_rules() -> None:
    node = make_node()
    feed(node, suspect("ghost", 1))  # unknown: ignored
    add_members(node, "b")
    feed(node, alive("b", 3))
    feed(node, suspect("b", 2))  # old incarnation
    assert _state(node, "b") is MemberState.ALIVE
    feed(node, suspect("b", 3), now=1.0)
    ev = node.take_events()
    assert [type(e) for e in ev] == [MemberSuspected]
    assert _state(node, "b") is MemberState.SUSPECT


def test_suspicion_times_out_into_dead_with_our_name() -> None:
    node = make_node()
    add_members(node, "b", "c")  # n = 3: k = 0, timeout = min = 4 s
    feed(node, suspect("b", 1), now=10.0)
    node.take_events()
    node.take_outgoing()
    run = run_until(node, 13.99, answer_pings=True)
    assert not [e for _, e in run.events if isinstance(e, MemberFailed)]
    assert _state(node, "b") is MemberState.SUSPECT
    node.handle_timeout(now=14.0)
    assert [type(e) for e in node.take_events()] == [MemberFailed]
    assert _state(node, "b") is MemberState.DEAD
    msgs = _queued(node, now=14.0)
    assert Dead(incarnation=1, node="b", from_="a") in msgs


def _dogpile(*confirmations: tuple[str, float], config: Config | None = None) -> float | None:
    """b is suspected by c at 0 s, then confirmed by (who, when); when b is declared failed."""
    node = make_node(config)
    add_members(node, "b", "c", "d", "e")  # n=5: k=2, min 4 s, max 24 s
    feed(node, suspect("b", 1, frm="c"), now=0.0)
    for frm, t in confirmations:
        feed(node, suspect("b", 1, frm=frm), now=t)
    return _failed_at(node, "b")


def test_dogpile_confirmations_shorten_the_timer() -> None:
    assert _dogpile() == pytest.approx(24.0)
    assert _dogpile(("c", 1.0)) == pytest.approx(24.0)  # duplicate: no change
    assert _dogpile(("c", 1.0), ("d", 1.0)) == pytest.approx(24 - 20 * 0.6309297, abs=2e-3)
    assert _dogpile(("c", 1.0), ("d", 1.0), ("e", 2.0)) == pytest.approx(4.0)


@pytest.mark.parametrize(("scaled", "expected"), [(True, 72.0), (False, 24.0)])
def test_a_slow_member_stretches_its_own_suspicion_timeouts(scaled: bool, expected: float) -> None:
    def failed_at(*confirmed_by: str) -> float | None:
        node = make_node(Config.lan(health_scaled_suspicion=scaled))
        add_members(node, "b", "c", "d", "e")  # n=5: k=2, min 4 s, max 24 s
        _refute(node, 2)  # we are slow ourselves: multiplier 3
        assert node.health_score == 2
        for frm in ("c", *confirmed_by):
            feed(node, suspect("b", 1, frm=frm), now=0.0)
        return _failed_at(node, "b")

    assert failed_at() == pytest.approx(expected)
    # confirmations still shrink it, down to the (scaled) min
    assert failed_at("d", "e") == pytest.approx(expected / 6)


def _self_incarnation(node: Node) -> int:
    me = node.member(node.name)
    assert me is not None
    return me.incarnation


def _self_alives(node: Node, *, now: float) -> list[int]:
    return [m.incarnation for m in _queued(node, now=now)
            if isinstance(m, Alive) and m.node == node.name]


def test_a_slow_member_that_still_hears_peers_refreshes_its_incarnation() -> None:
    node = make_node(Config.lan(slow_refresh_interval=2.0, slow_refresh_min_score=4))
    add_members(node, "b", "c")
    start = _self_incarnation(node)
    node.report_loop_lag(1.5, now=0.5)  # a stall of 3 probe timeouts: score 3, below the bar
    assert node.health_score == 3
    feed(node, alive("b"), now=1.0)
    assert _self_incarnation(node) == start
    node.report_loop_lag(0.5, now=1.5)  # score 4: slow
    assert node.health_score == 4
    feed(node, alive("b"), now=2.0)
    assert _self_incarnation(node) == start + 1
    # gossiped, so suspicions at `start` are void
    assert set(_self_alives(node, now=2.0)) == {start + 1}
    feed(node, alive("c"), now=3.9)  # at most once per interval
    assert _self_incarnation(node) == start + 1
    feed(node, alive("c"), now=4.0)
    assert _self_incarnation(node) == start + 2
    assert node.refreshes == 2
    assert node.health_score == 4  # refreshing is not a refutation: no health penalty


def test_a_refutation_counts_as_the_refresh() -> None:
    node = make_node(Config.lan())
    add_members(node, "b", "c")
    node.report_loop_lag(2.0, now=9.0)  # score 4
    feed(node, suspect("a", _self_incarnation(node), frm="b"), now=10.0)
    refuted = _self_incarnation(node)
    feed(node, alive("c"), now=11.0)  # within the interval of the refutation
    assert _self_incarnation(node) == refuted
    assert node.refreshes == 0


@pytest.mark.parametrize("config", [Config.lan(slow_refresh_interval=0.0), Config.swim()])
def test_slow_refresh_can_be_switched_off(config: Config) -> None:
    node = make_node(config)
    add_members(node, "b")
    start = _self_incarnation(node)
    node.report_loop_lag(4.0, now=0.0)  # score 7, the top
    if config.loop_lag_health:
        assert node.health_score == 7
    for t in range(10):
        feed(node, alive("b"), now=float(t))
    assert _self_incarnation(node) == start


def test_a_member_that_hears_nothing_or_has_left_never_refreshes() -> None:
    node = make_node(Config.lan())
    add_members(node, "b")
    start = _self_incarnation(node)
    node.report_loop_lag(4.0, now=0.0)  # score 7, the top
    assert node.health_score == 7
    node.handle_timeout(now=30.0)  # timers alone (a member cut off inbound) do not refresh
    node.receive_datagram(b"\xff garbage", ("127.0.0.1", 9), now=31.0)  # nor undecodable input
    assert _self_incarnation(node) == start
    node.leave(now=40.0, timeout=1.0)
    feed(node, alive("b"), now=45.0)
    assert node.refreshes == 0


def test_without_lha_suspicion_the_timeout_is_fixed_at_min() -> None:
    config = Config.lan(lha_suspicion=False)
    assert _dogpile(config=config) == pytest.approx(4.0)
    assert _dogpile(("d", 0.0), config=config) == pytest.approx(4.0)


def test_dead_rules_and_leave_vs_failure() -> None:
    node = make_node()
    add_members(node, "b", "c")
    feed(node, dead("ghost", 1))
    feed(node, alive("b", 2))
    feed(node, dead("b", 1))  # old
    assert _state(node, "b") is MemberState.ALIVE
    feed(node, dead("b", 2, frm="c"))
    assert [type(e) for e in node.take_events()] == [MemberFailed]
    feed(node, dead("b", 2, frm="c"))  # already dead: nothing
    assert node.take_events() == []
    feed(node, dead("c", 1, frm="c"))
    assert [type(e) for e in node.take_events()] == [MemberLeft]
    assert _state(node, "c") is MemberState.LEFT
    # A newer alive brings a dead member back.
    feed(node, alive("b", 3))
    assert [type(e) for e in node.take_events()] == [MemberJoined]


def test_merge_state_rules() -> None:
    node = make_node()
    add_members(node, "b", "c")

    def st(name: str, inc: int, state: int) -> PushNodeState:
        return PushNodeState(name=name, addr=IP, port=addr_of(name)[1], incarnation=inc,
                             state=state, vsn=VSN)

    states = [st("b", 1, 2), st("c", 1, 3), st("d", 1, 0), st("e", 1, 1)]
    push_pull_in(node, *states)
    assert _state(node, "b") is MemberState.SUSPECT  # remote dead -> only suspect
    assert _state(node, "c") is MemberState.LEFT
    assert _state(node, "d") is MemberState.ALIVE
    assert node.member("e") is None  # unknown suspect: ignored
    # The suspicion is ours (From = our name), so it is gossiped as our accusation.
    assert Suspect(incarnation=1, node="b", from_="a") in _queued(node, now=0.0)


@pytest.mark.parametrize("vsn", [bytes((0, 5, 2, 2, 5, 5)), bytes((3, 2, 2, 2, 5, 5)),
                                 bytes((1, 5, 2))])
def test_alive_with_bad_vsn_is_dropped(vsn: bytes) -> None:
    node = make_node()
    feed(node, alive("b", 1, vsn=vsn))
    assert node.member("b") is None
    assert node.drops["bad_vsn"] == 1


def test_alive_hook_can_veto() -> None:
    class Hooks:
        def notify_alive(self, peer: Member) -> str | None:
            return "no" if peer.name.startswith("bad") else None

    node = make_node(hooks=Hooks())
    feed(node, alive("bad1"), alive("good"))
    assert node.member("bad1") is None
    assert node.member("good") is not None
    assert node.drops["alive_vetoed"] == 1


def test_update_meta_bumps_incarnation_and_broadcasts() -> None:
    node = make_node()
    add_members(node, "b")
    node.update_meta(b"v2", now=1.0)
    ev = node.take_events()
    assert [type(e) for e in ev] == [MemberUpdated]
    assert node.local_member.meta == b"v2"
    assert node.local_member.incarnation == 2
    assert any(isinstance(m, Alive) and m.meta == b"v2" for m in _queued(node, now=1.0))
    with pytest.raises(ValueError, match="512"):
        node.update_meta(b"x" * 513, now=2.0)


def test_meta_hook_supplies_start_meta() -> None:
    class Hooks:
        def node_meta(self, limit: int) -> bytes:
            assert limit == 512
            return b"\xff\x80"

    node = make_node(hooks=Hooks())
    assert node.local_member.meta == b"\xff\x80"


def test_name_conflict_event_lists_both(monkeypatch: pytest.MonkeyPatch) -> None:
    node = make_node()
    add_members(node, "b")
    feed(node, alive("b", 2, port=4321))
    (ev,) = node.take_events()
    assert isinstance(ev, NameConflict)
    assert ev.existing.addr != ev.other.addr


def _names(members: Sequence[Member]) -> set[str]:
    return {m.name for m in members}


def test_members_lists_all_states() -> None:
    node = make_node()
    add_members(node, "b", "c")
    feed(node, dead("c", 1))
    assert _names(node.members()) == {"a", "b", "c"}
    assert node.num_members == 3


def test_dead_members_are_reaped_after_gossip_to_the_dead_time() -> None:
    node = make_node()
    add_members(node, "b", "c")
    feed(node, dead("c", 1), now=1.0)
    feed(node, dead("b", 1, frm="b"), now=1.0)
    # The table is reaped when the probe round robin starts over (with no one alive to
    # probe, at every probe tick).
    run_until(node, 20.0)
    assert node.member("c") is not None
    run_until(node, 32.5)
    assert node.member("c") is None
    assert node.member("b") is None  # left members too (reap_left_nodes)
    node = make_node(Config.lan(reap_left_nodes=False))
    add_members(node, "b")
    feed(node, dead("b", 1, frm="b"), now=1.0)
    run_until(node, 100.0)
    assert node.member("b") is not None  # memberlist 0.2.2 keeps left members


def test_suspect_carries_on_when_sent_in_push_pull_from_us() -> None:
    node = make_node()
    add_members(node, "b")
    pp = push_pull_in(node)
    assert {s.name for s in pp.states} == {"a", "b"}
    assert all(s.vsn == VSN for s in pp.states)


def test_cidrs_allowed_filters_alive_messages() -> None:
    cfg = Config.lan(cidrs_allowed=("127.0.0.0/8",))
    node = make_node(cfg)
    feed(node, alive("b"), sender=("10.1.1.1", 9))  # sender outside the networks
    assert node.member("b") is None
    feed(node, Alive(incarnation=1, node="c", addr=b"\x0a\x00\x00\x01", port=1, vsn=VSN))
    assert node.member("c") is None  # the member's own address is outside
    feed(node, alive("d"))
    assert node.member("d") is not None
    assert node.drops["cidr_blocked"] == 2
    # Push/pull merges are filtered too.
    push_pull_in(node, PushNodeState(name="e", addr=b"\x0a\x00\x00\x02", port=1,
                                     incarnation=1, state=0, vsn=VSN))
    assert node.member("e") is None
    assert node.drops["cidr_blocked"] == 3


def test_cidrs_allowed_is_validated() -> None:
    with pytest.raises(ValueError, match=r"Config\.cidrs_allowed"):
        Config.lan(cidrs_allowed=("not-a-net",))
    with pytest.raises(ValueError, match=r"Config\.cidrs_allowed"):
        Config.lan(cidrs_allowed=["10.0.0.0/8"])  # type: ignore[arg-type]
    assert Config.lan(cidrs_allowed=("10.0.0.0/8", "::1/128")).cidrs_allowed


def test_overdue_suspicion_after_a_confirmation_is_due_now_not_in_the_past() -> None:
    node = make_node()
    add_members(node, "b", "c", "d", "e")  # k = 2, min 4 s, max 24 s
    feed(node, suspect("b", 1, frm="c"), now=0.0)
    run_until(node, 10.0, answer_pings=True)  # every other timer is now due after 10 s
    feed(node, suspect("b", 1, frm="d"), now=10.0)
    feed(node, suspect("b", 1, frm="e"), now=10.0)  # timeout now 4 s: overdue since t=4
    assert node.next_deadline() == 10.0
    node.handle_timeout(now=10.0)
    assert node.member("b").state is MemberState.DEAD  # type: ignore[union-attr]


def test_refuted_suspicion_is_reported_as_update() -> None:
    """A suspect that refutes comes back as MemberUpdated (memberlist is silent here)."""
    node = make_node()
    add_members(node, "b")
    node.take_events()
    feed(node, suspect("b", 1, "c"))
    assert [type(e) for e in node.take_events()] == [MemberSuspected]
    feed(node, alive("b", 2))
    ev = node.take_events()
    assert [type(e) for e in ev] == [MemberUpdated]
    assert ev[0].member.state is MemberState.ALIVE  # type: ignore[union-attr]
    assert ev[0].member.incarnation == 2  # type: ignore[union-attr]
