"""Serf member status in simulated clusters: reconnect after a partition heals, reap,
force-leave (with and without prune)."""

from __future__ import annotations

import random

from sim_helpers import replay
from test_sim_serf import Log, pushed_state, serf_of

from swimguard.config import Config
from swimguard.protocol.api import NodeAPI, NodeFactory
from swimguard.protocol.outgoing import Address
from swimguard.serf.node import SerfNode
from swimguard.serf.status import MemberReaped, MemberStatusChanged, SerfStatus, StatusTimes
from swimguard.sim.cluster import SimCluster
from swimguard.sim.scenarios import start_cluster

TEST = "test_sim_serf_status.py"


def factory(config: Config, times: StatusTimes | None) -> NodeFactory:
    def make(name: str, addr: Address, rng: random.Random, *, now: float) -> NodeAPI:
        node = SerfNode(config, name=name, advertise=addr, rng=rng, now=now, status_times=times)
        return node  # type: ignore[return-value]

    return make


def cluster(n: int, seed: int, times: StatusTimes | None = None) -> tuple[SimCluster, Log]:
    c = start_cluster(
        n,
        seed=seed,
        factory=factory(Config.lan(), times),
        settle=30.0,
        replay_hint=replay(TEST, seed),
    )
    log = Log()
    c.add_listener(log)
    return c, log


def statuses(c: SimCluster, observer: str) -> dict[str, SerfStatus]:
    return {m.name: m.status for m in serf_of(c, observer).serf_members()}


def test_a_healed_partition_rejoins_through_reconnect_after_memberlist_forgot() -> None:
    c, _ = cluster(5, 41)
    c.network.partition([[0, 1]])
    c.run_for(90.0)  # failed on both sides, and memberlist's 30 s of dead gossip is over
    for a, b in (("m0", "m4"), ("m4", "m0")):
        assert statuses(c, a)[b] is SerfStatus.FAILED
        assert b not in c.view(a)  # memberlist forgot it; only Serf's table remembers
    c.network.heal()
    c.run_for(90.0)  # a few reconnect intervals (30 s)
    for m in c.live():
        assert set(statuses(c, m.name).values()) == {SerfStatus.ALIVE}, m.name


def test_failed_and_left_members_are_reaped_after_their_timeouts() -> None:
    times = StatusTimes(reconnect_interval=30.0, reconnect_timeout=200.0, tombstone_timeout=80.0)
    c, log = cluster(5, 42, times)
    t0 = c.now
    c.crash("m3")
    c.leave("m2")
    c.run_for(40.0)
    assert statuses(c, "m0")["m3"] is SerfStatus.FAILED
    assert statuses(c, "m0")["m2"] is SerfStatus.LEFT
    c.run_for(60.0)  # the tombstone (80 s) passed, the reconnect timeout (200 s) not
    assert "m2" not in statuses(c, "m0")
    assert statuses(c, "m0")["m3"] is SerfStatus.FAILED
    c.run_for(120.0)
    for m in c.live():
        assert set(statuses(c, m.name)) == {"m0", "m1", "m4"}
        reaped = [
            (t, e.member.name)
            for t, who, e in log.rows
            if who == m.name and isinstance(e, MemberReaped)
        ]
        assert [name for _, name in reaped] == ["m2", "m3"]
        # Each reaped after its own timeout, counted from its failure or leave.
        assert reaped[0][0] >= t0 + 80.0
        assert reaped[1][0] >= t0 + 200.0


def _force_leave(name: str, *, prune: bool):  # type: ignore[no-untyped-def]
    def call(node: NodeAPI, now: float) -> None:
        assert isinstance(node, SerfNode)
        node.force_leave(name, prune=prune, now=now)

    return call


def test_force_leave_of_a_failed_member_makes_it_left_everywhere() -> None:
    c, log = cluster(5, 43)
    c.crash("m3")
    c.run_for(20.0)
    assert all(statuses(c, m.name)["m3"] is SerfStatus.FAILED for m in c.live())
    c.call("m0", _force_leave("m3", prune=False))
    c.run_for(5.0)
    for m in c.live():
        assert statuses(c, m.name)["m3"] is SerfStatus.LEFT, m.name
        changes = log.seen_by(m.name, MemberStatusChanged)
        assert [(e.member.name, e.previous) for e in changes] == [("m3", SerfStatus.FAILED)]  # type: ignore[attr-defined]
        # Push/pull's left list names it now, so serf peers show it left too.
        assert "m3" in pushed_state(serf_of(c, m.name)).left_members


def test_force_leave_with_prune_erases_it_everywhere_at_once() -> None:
    c, log = cluster(5, 44)
    c.crash("m3")
    c.run_for(20.0)
    c.call("m1", _force_leave("m3", prune=True))
    c.run_for(5.0)
    for m in c.live():
        assert "m3" not in statuses(c, m.name), m.name
        reaped = log.seen_by(m.name, MemberReaped)
        assert [(e.member.name, e.forced) for e in reaped] == [("m3", True)]  # type: ignore[attr-defined]


def test_force_leave_of_an_alive_member_is_refuted() -> None:
    c, _ = cluster(4, 45)
    c.call("m0", _force_leave("m2", prune=False))
    c.run_for(10.0)
    for m in c.live():
        assert statuses(c, m.name)["m2"] is SerfStatus.ALIVE, m.name


def test_a_coalescing_node_delivers_a_join_burst_after_quiet_and_a_crash_once() -> None:
    from swimguard.protocol.events import MemberFailed, MemberJoined
    from swimguard.serf.coalesce import SERF_AGENT_COALESCE

    config = Config.lan()

    def make(name: str, addr: Address, rng: random.Random, *, now: float) -> NodeAPI:
        node = SerfNode(
            config, name=name, advertise=addr, rng=rng, now=now, coalesce=SERF_AGENT_COALESCE
        )
        return node  # type: ignore[return-value]

    c = start_cluster(4, seed=46, factory=make, settle=30.0, replay_hint=replay(TEST, 46))
    log = Log()
    c.add_listener(log)
    c.run_for(5.0)
    for m in c.live():
        joins = [(t, e) for t, who, e in log.rows if who == m.name and isinstance(e, MemberJoined)]
        # the join burst comes out as one batch, once per member
        assert sorted(e.member.name for _, e in joins) == ["m0", "m1", "m2", "m3"]
        assert len({t for t, _ in joins}) == 1
    log.rows.clear()
    c.crash("m3")
    c.run_for(30.0)
    for m in c.live():
        failed = [e.member.name for e in log.seen_by(m.name, MemberFailed)]  # type: ignore[attr-defined]
        assert failed == ["m3"]
        assert not log.seen_by(m.name, MemberJoined)


def test_a_join_without_replay_ignores_old_user_events_but_gets_new_ones() -> None:
    from swimguard.serf import UserEventReceived

    c, log = cluster(4, 47)

    def fire(name: str):  # type: ignore[no-untyped-def]
        def call(node: NodeAPI, now: float) -> None:
            assert isinstance(node, SerfNode)
            node.user_event(name, b"", now=now)

        return call

    c.call("m1", fire("old"))
    c.run_for(60.0)  # long after the broadcast stopped: only push/pull state carries it
    seed = c.member("m0").addr
    for name, replay_old in (("replayer", True), ("fresh", False)):
        c.add_member(name)

        def join(node: NodeAPI, now: float, replay: bool = replay_old) -> None:
            assert isinstance(node, SerfNode)
            node.join([seed], now=now, replay=replay)

        c.call(name, join)
    c.run_for(2.0)
    assert [e.name for e in log.seen_by("replayer", UserEventReceived)] == ["old"]  # type: ignore[attr-defined]
    assert log.seen_by("fresh", UserEventReceived) == []
    c.call("m2", fire("new"))
    c.run_for(10.0)
    assert [e.name for e in log.seen_by("fresh", UserEventReceived)] == ["new"]  # type: ignore[attr-defined]


def test_conflict_answers_still_know_a_failed_member_memberlist_forgot() -> None:
    from swimguard.serf.messages import SerfMemberStatus

    c, _ = cluster(4, 48)
    c.crash("m3")
    c.run_for(60.0)
    assert "m3" not in c.view("m0")
    view = serf_of(c, "m0").serf.member_view
    assert view is not None
    answer = view("m3")
    assert answer is not None
    assert answer.status is SerfMemberStatus.FAILED
    assert answer.port == c.member("m3").addr[1]
