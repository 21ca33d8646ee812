"""Clusters of `SerfNode`s in the simulator: the Serf layer under virtual time and loss.

The simulator drives a `SerfNode` exactly as it drives a `Node` (its factory builds one),
so what the agent does with Serf on (intents, user events, push/pull state) runs here
deterministically, next to the Lifeguard properties.
"""

from __future__ import annotations

import random

import pytest
from sim_helpers import replay

from swimguard.config import Config
from swimguard.protocol.api import NodeAPI, NodeFactory
from swimguard.protocol.events import MemberFailed, MemberLeft
from swimguard.protocol.members import MemberState
from swimguard.protocol.outgoing import Address
from swimguard.serf import (
    JoinIntentReceived,
    LeaveIntentReceived,
    PushPull,
    UserEventReceived,
    decode_message,
)
from swimguard.serf.node import SerfNode
from swimguard.sim.cluster import SimCluster, SimMember
from swimguard.sim.invariants import attach_all, check_converged
from swimguard.sim.network import LinkModel
from swimguard.sim.scenarios import start_cluster


def serf_factory(config: Config) -> NodeFactory:
    def make(name: str, addr: Address, rng: random.Random, *, now: float) -> NodeAPI:
        node: NodeAPI = SerfNode(config, name=name, advertise=addr, rng=rng, now=now)  # type: ignore[assignment]
        return node

    return make


class Log:
    """Every event each member published: (time, observer, event)."""

    def __init__(self) -> None:
        self.rows: list[tuple[float, str, object]] = []

    def on_events(self, now: float, member: SimMember, events: list[object], cause: str) -> None:
        self.rows.extend((now, member.name, e) for e in events)

    def seen_by(self, observer: str, kind: type) -> list[object]:
        return [e for _, who, e in self.rows if who == observer and isinstance(e, kind)]


def serf_cluster(
    n: int, seed: int, test: str, *, link: LinkModel | None = None
) -> tuple[SimCluster, Log]:
    config = Config.lan()
    c = start_cluster(
        n,
        seed=seed,
        factory=serf_factory(config),
        link=link,
        settle=30.0,
        replay_hint=replay(test, seed),
    )
    attach_all(c, config.gossip_to_the_dead_time)
    log = Log()
    c.add_listener(log)
    return c, log


def serf_of(c: SimCluster, name: str) -> SerfNode:
    node = c.member(name).node
    assert isinstance(node, SerfNode)
    return node


def pushed_state(node: SerfNode) -> PushPull:
    state = decode_message(node.serf.local_state(False))
    assert isinstance(state, PushPull)
    return state


def test_join_intents_reach_every_member() -> None:
    c, _ = serf_cluster(6, 11, "test_sim_serf.py")
    check_converged(c)
    for m in c.live():
        node = serf_of(c, m.name)
        # Each member gossiped its join intent after its join reached m0: everyone holds
        # a Lamport time for everyone (m0 never joined anyone, so it sent no intent).
        for other in c.live():
            assert node.serf.status_ltime(other.name) is not None
        assert set(pushed_state(node).status_ltimes) == {o.name for o in c.live()}


def test_a_leave_intent_is_seen_as_left_not_failed() -> None:
    c, log = serf_cluster(6, 12, "test_sim_serf.py")
    c.leave("m4")
    c.run_for(30.0)
    assert not c.member("m4").up  # it stopped on LeaveCompleted
    for m in c.live():
        intents = log.seen_by(m.name, LeaveIntentReceived)
        assert [i.node for i in intents] == ["m4"]  # type: ignore[attr-defined]
        assert [e.member.name for e in log.seen_by(m.name, MemberLeft)] == ["m4"]  # type: ignore[attr-defined]
        assert log.seen_by(m.name, MemberFailed) == []
        # Serf's push/pull state names it in LeftMembers, so a Serf peer shows "left".
        assert pushed_state(serf_of(c, m.name)).left_members == ("m4",)


def test_the_leave_starts_after_the_intent_wait() -> None:
    c, log = serf_cluster(4, 13, "test_sim_serf.py")
    start = c.now
    c.leave("m3", timeout=5.0)
    c.run_for(10.0)
    first_intent = min(t for t, _, e in log.rows if isinstance(e, LeaveIntentReceived))
    first_left = min(t for t, _, e in log.rows if isinstance(e, MemberLeft))
    wait = min(5.0 / 2, max(3 * Config.lan().gossip_interval, 0.1))
    assert first_intent < start + wait <= first_left


def test_a_user_event_reaches_every_member_once() -> None:
    c, log = serf_cluster(8, 14, "test_sim_serf.py", link=LinkModel(loss=0.05))

    def fire(node: NodeAPI, now: float) -> None:
        assert isinstance(node, SerfNode)
        node.user_event("deploy", b"v1", now=now)

    c.call("m2", fire)
    c.run_for(20.0)
    for m in c.live():
        got = log.seen_by(m.name, UserEventReceived)
        expected = [] if m.name == "m2" else [("deploy", b"v1")]
        assert [(e.name, e.payload) for e in got] == expected  # type: ignore[attr-defined]


def test_a_late_joiner_gets_user_events_and_intents_from_push_pull_state() -> None:
    c, log = serf_cluster(4, 15, "test_sim_serf.py")

    def fire(node: NodeAPI, now: float) -> None:
        assert isinstance(node, SerfNode)
        node.user_event("config", b"x", now=now)

    c.call("m1", fire)
    c.run_for(60.0)  # long after the broadcast stopped being retransmitted
    c.add_member("late", ["m0"])
    c.run_for(1.0)
    got = log.seen_by("late", UserEventReceived)
    assert [(e.name, e.payload) for e in got] == [("config", b"x")]  # type: ignore[attr-defined]
    late = serf_of(c, "late")
    assert all(late.serf.status_ltime(m.name) is not None for m in c.live())
    # The joiner's own intent went out after its join: the others hear of it.
    c.run_for(10.0)
    for m in c.live():
        if m.name != "late":
            assert "late" in [i.node for i in log.seen_by(m.name, JoinIntentReceived)]  # type: ignore[attr-defined]


@pytest.mark.parametrize("seed", [21, 22])
def test_with_serf_on_a_crash_is_detected_by_all_and_nobody_healthy_fails(seed: int) -> None:
    c, log = serf_cluster(8, seed, "test_sim_serf.py", link=LinkModel(loss=0.02))
    c.crash("m5")
    c.run_for(40.0)
    for m in c.live():
        seen = c.view(m.name).get("m5")  # reaped after gossip_to_the_dead_time
        assert seen is None or seen.state is MemberState.DEAD
        failed = [e.member.name for e in log.seen_by(m.name, MemberFailed)]  # type: ignore[attr-defined]
        assert failed == ["m5"]
    check_converged(c)


def test_with_serf_on_a_healthy_cluster_sees_no_failure() -> None:
    c, log = serf_cluster(8, 23, "test_sim_serf.py", link=LinkModel(loss=0.02))
    c.run_for(60.0)
    assert not [e for _, _, e in log.rows if isinstance(e, MemberFailed | MemberLeft)]
    check_converged(c)


def test_a_serf_cluster_replays_identically() -> None:
    def digest() -> str:
        c = start_cluster(
            5, seed=31, factory=serf_factory(Config.lan()), settle=20.0, trace=True
        )
        c.call("m1", lambda node, now: node.user_event("e", b"", now=now))  # type: ignore[attr-defined]
        c.leave("m2")
        c.run_for(20.0)
        return c.trace_digest()

    assert digest() == digest()
