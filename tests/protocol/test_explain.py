"""`Node.explain`: the story of a member's state, from bounded history (fake clock, simulator)."""

from __future__ import annotations

import json

import pytest
from node_helpers import (
    add_members,
    alive,
    dead,
    feed,
    framed,
    make_node,
    push_pull,
    state,
    suspect,
)
from sim_support import add, join_all, lose_udp, names_of, node, node_cluster

from swimguard.config import Config
from swimguard.protocol import MemberState
from swimguard.protocol.history import (
    MAX_CHANGES,
    MAX_CONFIRMATIONS,
    HealthCause,
    History,
    ProbeKind,
    ProbeResult,
    SuspicionEnd,
    SuspicionSource,
)
from swimguard.protocol.scaling import suspicion_timeout
from swimguard.sim import SimCluster

LAN = Config.lan()


def test_unknown_member_has_no_explanation() -> None:
    assert make_node().explain("nobody", now=0.0) is None


def test_suspicion_story_with_confirmations_deadline_and_why() -> None:
    n = make_node()
    add_members(n, "b", "c", "d", "e")  # n=5 with us: k = suspicion_mult - 2 = 2
    feed(n, suspect("b", frm="c"), now=10.0)
    feed(n, suspect("b", frm="d"), now=11.0)
    feed(n, suspect("b", frm="d"), now=11.5)  # a duplicate is no confirmation
    ex = n.explain("b", now=12.0)
    assert ex is not None
    assert (ex.state, ex.incarnation, ex.since) == (MemberState.SUSPECT, 1, 10.0)
    s = ex.suspicion
    assert s is not None
    assert (s.accuser, s.started, s.wanted, s.members, s.health_multiplier) == ("c", 10.0, 2, 5, 1)
    assert s.source is SuspicionSource.GOSSIP
    assert [(c.by, c.at) for c in s.confirmations] == [("d", 11.0)]
    min_ = suspicion_timeout(4, 5, LAN.probe_interval)
    assert (s.min_timeout, s.max_timeout) == (min_, 6 * min_)
    assert min_ < s.timeout < 6 * min_  # one of two confirmations: part way down
    assert s.deadline == 10.0 + s.timeout
    assert s.ended is None
    assert "1 of k=2 confirmations" in s.why
    assert "log10(5)" in s.why
    assert [c.state for c in ex.changes] == [MemberState.SUSPECT]  # a join is no story


def test_refuted_suspicion_keeps_its_story_with_how_it_ended() -> None:
    n = make_node()
    add_members(n, "b", "c", "d")
    feed(n, suspect("b", frm="c"), now=1.0)
    feed(n, alive("b", inc=2), now=2.0)
    ex = n.explain("b", now=3.0)
    assert ex is not None
    assert ex.suspicion is not None
    assert (ex.state, ex.incarnation, ex.since) == (MemberState.ALIVE, 2, 2.0)
    assert (ex.suspicion.ended, ex.suspicion.ended_at) == (SuspicionEnd.REFUTED, 2.0)
    assert ex.suspicion.deadline is None
    assert ex.death is None


def test_dead_news_names_who_declared_it() -> None:
    n = make_node()
    add_members(n, "b", "c")
    feed(n, suspect("b", frm="c"), now=1.0)
    feed(n, dead("b", frm="c"), now=2.0)
    ex = n.explain("b", now=5.0)
    assert ex is not None
    assert ex.death is not None
    assert ex.suspicion is not None
    assert (ex.death.state, ex.death.declared_by, ex.death.at) == (MemberState.DEAD, "c", 2.0)
    assert ex.death.timeout is None  # not our timer
    assert ex.suspicion.ended is SuspicionEnd.DEAD_NEWS


def test_our_own_expiry_records_the_timeout_it_waited() -> None:
    n = make_node(Config.lan())
    add_members(n, "b", "c")  # n=3: k=0, the timeout is the minimum at once
    feed(n, suspect("b", frm="c"), now=1.0)
    deadline = n.explain("b", now=1.0).suspicion.deadline  # type: ignore[union-attr]
    assert deadline is not None
    n.handle_timeout(now=deadline)
    ex = n.explain("b", now=deadline)
    assert ex is not None
    assert ex.death is not None
    assert ex.death.declared_by == "a"
    assert ex.death.timeout == deadline - 1.0
    assert ex.suspicion is not None
    assert ex.suspicion.ended is SuspicionEnd.EXPIRED
    assert "k=0" in ex.suspicion.why


def test_self_explanation_lists_what_moved_our_health() -> None:
    n = make_node()
    add_members(n, "b")
    n.report_health(3, now=1.0)
    n.report_loop_lag(2.0, now=2.0)  # 2 s frozen: +4 probe timeouts, clamped at 7
    feed(n, suspect("a", inc=1, frm="b"), now=3.0)  # refuting costs +1, already at the top
    n.report_health(0, now=4.0)
    ex = n.explain("a", now=5.0)
    assert ex is not None
    assert ex.is_self
    assert (ex.health_score, ex.health_max) == (n.health_score, 7)
    causes = [(h.cause, h.delta, h.score, h.at) for h in ex.health_changes]
    assert causes == [
        (HealthCause.APP_REPORT, 3, 3, 1.0),
        (HealthCause.LOOP_LAG, 4, 7, 2.0),
        (HealthCause.APP_WITHDRAWN, -3, 4, 4.0),
    ]
    assert ex.at_max_since is None  # left the top at 4.0
    assert n.explain("b", now=5.0).health_score is None  # type: ignore[union-attr]


def test_refutation_is_a_health_cause() -> None:
    n = make_node()
    add_members(n, "b")
    feed(n, suspect("a", inc=1, frm="b"), now=3.0)
    ex = n.explain("a", now=3.0)
    assert ex is not None
    assert [(h.cause, h.score) for h in ex.health_changes] == [(HealthCause.REFUTATION, 1)]


def test_to_dict_is_plain_json() -> None:
    n = make_node()
    add_members(n, "b", "c", "d", "e")
    feed(n, suspect("b", frm="c"), suspect("b", frm="d"), now=10.0)
    ex = n.explain("b", now=12.0)
    assert ex is not None
    d = ex.to_dict()
    assert json.loads(json.dumps(d, allow_nan=False)) == d
    assert (d["name"], d["state"], d["since"]) == ("b", "suspect", 10.0)
    susp = d["suspicion"]
    assert isinstance(susp, dict)
    assert susp["confirmations"] == [{"by": "d", "at": 10.0}]
    assert susp["ended"] is None
    me = n.explain("a", now=12.0)
    assert me is not None
    mine = me.to_dict()
    assert json.loads(json.dumps(mine, allow_nan=False)) == mine
    assert (mine["is_self"], mine["health_max"]) == (True, 7)


def test_history_forgets_the_member_recorded_longest_ago() -> None:
    h = History(max_members=2)
    for name in ("b", "c"):
        h.state_changed(name, MemberState.SUSPECT, 1, now=0.0)
    h.state_changed("b", MemberState.ALIVE, 2, now=1.0)  # b is now the newest
    h.state_changed("d", MemberState.SUSPECT, 1, now=2.0)
    assert len(h) == 2
    assert h.get("c") is None
    assert h.get("b") is not None
    assert h.get("d") is not None


def test_history_off_keeps_nothing() -> None:
    n = make_node(Config.lan(explain_members=0))
    add_members(n, "b", "c")
    feed(n, suspect("b", frm="c"), now=1.0)
    ex = n.explain("b", now=1.0)
    assert ex is not None
    assert ex.state is MemberState.SUSPECT
    assert ex.suspicion is None
    assert ex.changes == ()


def test_hostile_confirmations_are_capped_but_counted() -> None:
    cfg = Config.lan(suspicion_mult=200)
    n = make_node(cfg)
    names = [f"m{i}" for i in range(250)]
    add_members(n, *names)
    feed(n, suspect("m0", frm="m1"), now=1.0)
    for i in range(2, 100):
        feed(n, suspect("m0", frm=f"m{i}"), now=1.0 + i / 1000)
    ex = n.explain("m0", now=2.0)
    assert ex is not None
    assert ex.suspicion is not None
    assert len(ex.suspicion.confirmations) == MAX_CONFIRMATIONS
    assert "98 of k=198 confirmations" in ex.suspicion.why


@pytest.mark.parametrize("bad", [-1, 1.5, True])
def test_config_refuses_bad_history_sizes(bad: object) -> None:
    with pytest.raises(ValueError, match="explain_members"):
        Config.lan(explain_members=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [2, 3])
def test_sim_suspected_confirmed_twice_and_declared_dead(seed: int) -> None:
    """The issue's story: e crashes; one survivor suspects it, two others confirm, and the
    survivor whose timer runs out first declares it dead after the shrunk timeout."""
    c, _ = node_cluster(seed=seed)
    for name in "abcde":
        add(c, name)
    join_all(c)
    c.run_for(5.0)
    c.crash("e")
    assert c.run_until_true(
        lambda: all("e" in names_of(node(c, n), "DEAD") for n in "abcd"), c.now + 60.0)
    stories = {n: node(c, n).explain("e", now=c.now) for n in "abcd"}
    declarers = {n for n, ex in stories.items() if ex and ex.death and ex.death.declared_by == n}
    assert declarers
    who = min(declarers, key=lambda n: stories[n].death.at)  # type: ignore[union-attr]
    ex = stories[who]
    assert ex is not None
    assert ex.suspicion is not None
    assert ex.death is not None
    s = ex.suspicion
    others = {s.accuser, *(conf.by for conf in s.confirmations)}
    assert len(s.confirmations) == 2
    assert len(others) == 3
    assert others <= set("abcd")
    assert s.wanted == 2
    assert s.members == 5
    assert s.started < s.confirmations[0].at <= s.confirmations[1].at
    assert (s.ended, s.ended_at) == (SuspicionEnd.EXPIRED, ex.death.at)
    # Two of two confirmations: the timeout shrank all the way to the minimum.
    assert s.timeout == s.min_timeout == ex.death.timeout
    # Declared when the timeout ran out, or at once if the last confirmation came later.
    assert ex.death.at == pytest.approx(max(s.started + s.min_timeout, s.confirmations[1].at))
    assert "2 of k=2 confirmations" in s.why
    assert (ex.state, ex.death.state) == (MemberState.DEAD, MemberState.DEAD)
    assert [ch.state for ch in ex.changes][-2:] == [MemberState.SUSPECT, MemberState.DEAD]
    failed = {p.kind: p for p in ex.probes}
    if s.accuser == who:  # our own probe raised it: direct and indirect stages both failed
        assert s.source is SuspicionSource.PROBE
        assert not failed[ProbeKind.DIRECT].ok
        assert not failed[ProbeKind.INDIRECT].ok
        assert failed[ProbeKind.INDIRECT].relays == 3
    # Survivors whose timer ran out before the dead news came tell the same story; the
    # others name a declarer.
    for n, other in stories.items():
        assert other is not None
        assert other.death is not None
        assert other.suspicion is not None
        assert other.death.declared_by in declarers
        if n in declarers:
            assert other.suspicion.ended is SuspicionEnd.EXPIRED
            assert other.death.timeout == other.suspicion.timeout
        else:
            assert other.suspicion.ended is SuspicionEnd.DEAD_NEWS
            assert other.death.timeout is None


def test_probing_everyone_never_pushes_a_story_out() -> None:
    h = History(max_members=2)
    h.state_changed("x", MemberState.SUSPECT, 1, now=0.0)
    h.state_changed("y", MemberState.ALIVE, 1, now=0.0)  # a join: no story
    assert h.get("y") is None
    for i, name in enumerate(("b", "c", "d")):
        h.probed(name, ProbeResult(ProbeKind.DIRECT, True, float(i), 0.001))
    h.probed("d", ProbeResult(ProbeKind.TCP, False, 3.0, None))
    story = h.get("x")
    assert story is not None
    assert [c.state for c in story.changes] == [MemberState.SUSPECT]
    assert h.probes("b") == ()  # the probe results hold 2 members: b went first
    assert [(p.kind, p.ok) for p in h.probes("d")] == [
        (ProbeKind.DIRECT, True), (ProbeKind.TCP, False)
    ]


def test_state_changes_kept_are_the_last_few() -> None:
    h = History(max_members=1)
    for inc in range(1, 20):
        h.state_changed("x", MemberState.SUSPECT, inc, now=float(inc))
    story = h.get("x")
    assert story is not None
    assert [c.incarnation for c in story.changes] == list(range(20 - MAX_CHANGES, 20))


def test_a_push_pull_suspect_is_our_own_accusation_from_a_push_pull() -> None:
    n = make_node()
    add_members(n, "b", "c")
    sid = n.stream_accepted(("127.0.0.1", 9), now=1.0)
    n.stream_data(sid, framed(push_pull(state("b", st=2))), now=1.0)  # "b is dead", says c
    ex = n.explain("b", now=1.0)
    assert ex is not None
    assert ex.state is MemberState.SUSPECT  # we verify a remote death ourselves
    assert ex.suspicion is not None
    assert (ex.suspicion.accuser, ex.suspicion.source) == ("a", SuspicionSource.PUSH_PULL)
    assert ex.to_dict()["suspicion"]["source"] == "push_pull"  # type: ignore[index]


def _converged_cluster(names: str, config: Config) -> SimCluster:
    c, _ = node_cluster(config)
    for name in names:
        add(c, name)
    join_all(c)
    assert c.run_until_true(
        lambda: all(names_of(node(c, n), "ALIVE") == set(names) for n in names), c.now + 5.0)
    return c


def test_sim_probe_stages_show_an_indirect_rescue() -> None:
    c = _converged_cluster("abcde", Config.lan(disable_tcp_pings=True))
    lose_udp(c, "a", "b")
    lose_udp(c, "b", "a")
    c.run_for(30.0)
    ex = node(c, "a").explain("b", now=c.now)
    assert ex is not None
    assert ex.state is MemberState.ALIVE
    stages = {p.kind: p for p in ex.probes}
    assert set(stages) == {ProbeKind.DIRECT, ProbeKind.INDIRECT}
    assert not stages[ProbeKind.DIRECT].ok
    indirect = stages[ProbeKind.INDIRECT]
    assert indirect.ok
    assert indirect.rtt is not None
    assert indirect.rtt > 0
    assert indirect.relays == 3


def test_sim_probe_stages_show_udp_broken_but_tcp_fine() -> None:
    c = _converged_cluster("ab", Config.lan())
    lose_udp(c, "a", "b")
    lose_udp(c, "b", "a")
    c.run_for(20.0)
    ex = node(c, "a").explain("b", now=c.now)
    assert ex is not None
    stages = {p.kind: p for p in ex.probes}
    assert not stages[ProbeKind.DIRECT].ok
    assert not stages[ProbeKind.INDIRECT].ok  # nobody to relay: the gray failure shows
    assert stages[ProbeKind.INDIRECT].relays == 0
    tcp = stages[ProbeKind.TCP]
    assert tcp.ok
    assert tcp.rtt is not None
    assert tcp.rtt > 0
