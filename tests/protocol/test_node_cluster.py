"""Two to five Nodes wired together in the simulator (NodePair-style exchanges)."""

from __future__ import annotations

import pytest
from sim_support import EventsByMember, add, join, join_all, lose_udp, names_of, node, node_cluster

from swimguard.config import Config
from swimguard.protocol import (
    JoinCompleted,
    LeaveCompleted,
    MemberFailed,
    MemberJoined,
    MemberLeft,
    MemberState,
    MemberSuspected,
    PingCompleted,
    RemoteState,
    UserMessage,
)
from swimguard.protocol.outgoing import Datagram
from swimguard.sim import SimCluster, SimMember
from swimguard.wire.encryption import Keyring
from swimguard.wire.messages import Ping, Suspect
from swimguard.wire.packet import decode_packet


def converged(c: SimCluster, names: str) -> bool:
    want = set(names)
    return all(names_of(node(c, n), "ALIVE") == want for n in names)


def _cluster(names: str = "abc", config: Config | None = None,
             seed: int = 1) -> tuple[SimCluster, EventsByMember]:
    c, events = node_cluster(config, seed=seed)
    for n in names:
        add(c, n, config)
    join_all(c)
    assert c.run_until_true(lambda: converged(c, names), c.now + 2.0)
    return c, events


def test_push_pull_join_reports_and_converges() -> None:
    c, events = node_cluster()
    add(c, "a")
    add(c, "b")
    join(c, "b", "a")
    assert c.run_until_true(lambda: converged(c, "ab"), c.now + 0.1)  # one round trip
    assert JoinCompleted(joined=1, errors=()) in events("b")
    assert [e.member.name for e in events("a") if isinstance(e, MemberJoined)] == ["a", "b"]


def test_join_with_a_dead_seed_reports_the_error() -> None:
    c, events = node_cluster()
    add(c, "a")
    add(c, "b")
    c.crash("b")
    c.call("a", lambda n, now: n.join([c.member("b").addr, ("127.0.0.1", 1)], now=now))
    c.run_for(1.0)
    (done,) = [e for e in events("a") if isinstance(e, JoinCompleted)]
    assert done.joined == 0
    assert len(done.errors) == 2
    assert "connection refused" in done.errors[0]


def test_join_times_out_when_the_seed_never_answers() -> None:
    c, events = node_cluster(Config.local())
    add(c, "a", Config.local())
    add(c, "b", Config.local())
    c.stall("b", 100.0)
    join(c, "a", "b")
    c.run_for(2.0)
    (done,) = [e for e in events("a") if isinstance(e, JoinCompleted)]
    assert done.joined == 0
    assert "timeout" in done.errors[0]


def test_join_is_refused_on_incompatible_delegate_versions() -> None:
    c, events = node_cluster()
    add(c, "a")
    add(c, "b", config=Config.lan(delegate_protocol_min=0, delegate_protocol_max=0,
                                  delegate_protocol_version=0))
    join(c, "b", "a")
    c.run_for(0.5)
    (done,) = [e for e in events("b") if isinstance(e, JoinCompleted)]
    assert done.joined == 0
    assert "incompatible" in done.errors[0]
    assert node(c, "a").drops["incompatible_version"] == 1


def test_probes_are_acked_and_nobody_is_suspected() -> None:
    c, events = _cluster("abcde")
    c.run_for(30.0)
    for n in "abcde":
        assert not any(isinstance(e, MemberSuspected | MemberFailed) for e in events(n))
        assert sum(isinstance(e, PingCompleted) for e in events(n)) >= 25
        assert node(c, n).health_score == 0
        assert dict(node(c, n).drops).keys() <= {"late_ack"}


def test_crash_is_detected_by_every_survivor() -> None:
    c, events = _cluster("abcde")
    c.run_for(5.0)
    c.crash("e")
    t0 = c.now
    assert c.run_until_true(
        lambda: all("e" in names_of(node(c, n), "DEAD") for n in "abcd"), c.now + 60.0)
    # LAN, n=5: k=2, max suspicion 24 s; confirmations from 4 suspecters bring it to min 4 s.
    assert c.now - t0 < 15.0
    for n in "abcd":
        assert [e.member.name for e in events(n) if isinstance(e, MemberFailed)] == ["e"]


def test_graceful_leave_is_seen_as_left_never_failed() -> None:
    c, events = _cluster("abcd")
    c.run_for(3.0)
    c.leave("d", 5.0)  # the simulator stops d's process once it reports LeaveCompleted
    assert c.run_until_true(lambda: LeaveCompleted(timed_out=False) in events("d"), c.now + 5.0)
    assert not c.member("d").up
    assert c.run_until_true(
        lambda: all("d" in names_of(node(c, n), "LEFT") for n in "abc"), c.now + 5.0)
    c.run_for(60.0)
    for n in "abc":
        assert not any(isinstance(e, MemberFailed | MemberSuspected) for e in events(n))
        assert any(isinstance(e, MemberLeft) and e.member.name == "d" for e in events(n))


def test_leave_alone_completes_at_once_and_leave_times_out_without_gossip() -> None:
    c, events = node_cluster()
    add(c, "a")
    c.leave("a", 1.0)
    assert events("a")[-1] == LeaveCompleted(timed_out=False)
    c, events = _cluster("ab", Config.lan(gossip_interval=0.0))
    # Nothing gets through, datagrams or streams: no piggyback either.
    c.network.partition([[c.member("a").index], [c.member("b").index]])
    c.leave("b", 1.0)
    c.run_for(2.0)
    assert LeaveCompleted(timed_out=True) in events("b")


def test_false_suspicion_is_refuted() -> None:
    c, events = _cluster("abcd", Config.lan(disable_tcp_pings=True))
    c.run_for(2.0)
    # d goes mute (its datagrams are lost) but still hears everything: it gets suspected,
    # hears the suspicion and refutes; once its packets flow again the refutation wins.
    for n in "abc":
        lose_udp(c, "d", n)
    assert c.run_until_true(
        lambda: any(isinstance(e, MemberSuspected) for n in "abc" for e in events(n)),
        c.now + 20)
    assert c.run_until_true(lambda: node(c, "d").local_member.incarnation > 1, c.now + 5)
    for n in "abc":
        lose_udp(c, "d", n, lost=False)
    c.run_for(40.0)
    for n in "abc":
        assert node(c, n).member("d").state is MemberState.ALIVE  # type: ignore[union-attr]
        assert not any(isinstance(e, MemberFailed) for e in events(n))


def test_indirect_probe_saves_a_member_behind_a_broken_direct_link() -> None:
    c, events = _cluster("abcde", Config.lan(disable_tcp_pings=True))
    # Only UDP between a and b is lost; the relays (c, d, e) reach b fine.
    lose_udp(c, "a", "b")
    lose_udp(c, "b", "a")
    c.run_for(30.0)
    assert not any(isinstance(e, MemberSuspected) for e in events("a"))


def test_tcp_fallback_saves_a_member_when_udp_to_it_is_lost() -> None:
    c, events = _cluster("ab")
    lose_udp(c, "a", "b")
    lose_udp(c, "b", "a")
    c.run_for(20.0)
    assert not any(isinstance(e, MemberSuspected) for e in events("a"))
    assert node(c, "a").health_score == 0


def test_buddy_system_piggybacks_the_suspicion_on_the_ping() -> None:
    # No gossip rounds, and no periodic push/pull that would carry a's view of b to b.
    c, _events = _cluster("ab", Config.lan(gossip_interval=0.0, push_pull_interval=0.0))
    a_node, b_node = node(c, "a"), node(c, "b")
    c.run_for(1.0)
    # a suspects b but its broadcast queue is empty: only the buddy system can tell b. No input
    # empties the queue (ordinary piggybacked gossip would carry the suspicion too), hence
    # the two private calls.
    a_node._membership.suspect_node(Suspect(incarnation=1, node="b", from_="a"), now=c.now)
    a_node._tx.member_q.reset()
    c.call("a", lambda n, now: None)  # perform what the suspicion produced
    pings_with_suspect: list[bool] = []
    b = c.member("b").addr

    def watch(now: float, src: SimMember, datagram: Datagram, cause: str) -> None:
        if src.name == "a" and datagram.to == b:
            msgs = decode_packet(datagram.data)
            if isinstance(msgs[0], Ping):
                pings_with_suspect.append(Suspect(1, "b", "a") in msgs)

    c.datagram_tap = watch
    assert c.run_until_true(lambda: b_node.local_member.incarnation > 1, c.now + 5.0)
    assert pings_with_suspect == [True]
    c.run_for(2.0)
    assert a_node.member("b").state is MemberState.ALIVE  # type: ignore[union-attr]


def test_swim_only_run_works() -> None:
    c, _events = _cluster("abcd", Config.swim())
    c.run_for(5.0)
    c.crash("d")
    t0 = c.now
    assert c.run_until_true(
        lambda: all("d" in names_of(node(c, n), "DEAD") for n in "abc"), c.now + 30.0)
    assert c.now - t0 < 10.0  # fixed 4 s suspicion + probe period
    assert all(node(c, n).health_score == 0 for n in "abc")


def test_user_messages_and_broadcasts_reach_peers() -> None:
    c, events = _cluster("abc")
    b, cc = c.member("b").addr, c.member("c").addr
    c.call("a", lambda n, now: n.broadcast(b"news", now=now))
    c.call("a", lambda n, now: n.send_reliable(b, b"direct", now=now))
    c.call("a", lambda n, now: n.send_best_effort(cc, b"quick", now=now))
    c.run_for(3.0)
    assert UserMessage(b"news") in events("b")
    assert UserMessage(b"news") in events("c")
    assert UserMessage(b"direct") in events("b")
    assert UserMessage(b"quick") in events("c")


def test_user_state_travels_in_push_pull() -> None:
    class Hooks:
        def __init__(self, name: str) -> None:
            self.name = name
            self.got: list[tuple[bytes, bool]] = []

        def local_state(self, join: bool) -> bytes:
            return f"state-of-{self.name}".encode()

        def merge_remote_state(self, data: bytes, join: bool) -> None:
            self.got.append((data, join))

    ha, hb = Hooks("a"), Hooks("b")
    c, events = node_cluster()
    add(c, "a", hooks=ha)
    add(c, "b", hooks=hb)
    join(c, "b", "a")
    c.run_for(0.1)
    assert ha.got == [(b"state-of-b", True)]
    assert hb.got == [(b"state-of-a", True)]
    assert RemoteState(b"state-of-a", True) in events("b")


def test_periodic_push_pull_repairs_a_missed_update() -> None:
    c, _events = _cluster("abc", Config.local(gossip_interval=0.0, push_pull_interval=2.0))
    # Meta updates are normally gossiped; with gossip rounds off and no piggyback path
    # reaching c, only anti-entropy can carry it.
    lose_udp(c, "a", "c")
    lose_udp(c, "b", "c")
    c.update_meta("a", b"v2")
    assert c.run_until_true(lambda: node(c, "c").member("a").meta == b"v2",  # type: ignore[union-attr]
                            c.now + 10.0)


def test_encrypted_cluster_and_wrong_key_is_counted() -> None:
    key = bytes(range(32))
    c, events = node_cluster()
    add(c, "a", keyring=Keyring([key]))
    add(c, "b", keyring=Keyring([key]))
    add(c, "x", keyring=Keyring([bytes(32)]))
    join(c, "b", "a")
    join(c, "x", "a")
    c.run_for(5.0)
    assert names_of(node(c, "a"), "ALIVE") == {"a", "b"}
    assert sum(node(c, "a").drops.values()) >= 1
    (done,) = [e for e in events("x") if isinstance(e, JoinCompleted)]
    assert done.joined == 0


def test_label_mismatch_is_rejected() -> None:
    c, _events = node_cluster()
    add(c, "a", label=b"prod")
    add(c, "b", label=b"test")
    join(c, "b", "a")
    c.run_for(1.0)
    assert names_of(node(c, "a"), "ALIVE") == {"a"}
    assert node(c, "a").drops


@pytest.mark.parametrize("loop_lag", [False, True])
def test_stalled_node_and_loop_lag(loop_lag: bool) -> None:
    """a freezes for 3 s right after sending a probe; on waking its timers fire before it
    reads the ack that arrived meanwhile (worst case, as Go's random `select` may do).
    Without the loop-lag input it accuses the healthy target; with it, it does not."""
    cfg = Config.lan(loop_lag_health=loop_lag)
    c, events = _cluster("abcde", cfg, seed=3)
    a = node(c, "a")
    probes: list[float] = []

    def watch(now: float, src: SimMember, datagram: Datagram, cause: str) -> None:
        if src.name == "a" and isinstance(decode_packet(datagram.data)[0], Ping):
            probes.append(now)

    c.datagram_tap = watch
    for _ in range(5):
        c.run_for(2.0)
        sent = len(probes)
        # Checked every 0.1 ms: the ack comes back within 1-4 ms of the ping.
        assert c.run_until_true(lambda: len(probes) > sent, c.now + 5.0, 0.0001)  # noqa: B023
        c.stall("a", 3.0)
        c.run_for(10.0)
    suspicions = sum(isinstance(e, MemberSuspected) for e in events("a"))
    if loop_lag:
        assert suspicions == 0
        assert a.stalls == 5
    else:
        assert suspicions == 5
        assert a.stalls == 0
    # The healthy members a accused refute in time either way. (a itself, frozen for 3 s,
    # may legitimately be declared dead by the others and come back.)
    for n in "bcde":
        assert not any(isinstance(e, MemberFailed) and e.member.name != "a"
                       for e in events(n))


def _trace(seed: int) -> list[str]:
    c, events = _cluster("abcde", seed=seed)
    c.run_for(5.0)
    c.crash("c")
    c.run_for(20.0)
    return [f"{n}:{e!r}" for n in "abde" for e in events(n)]


def test_same_seed_same_run() -> None:
    assert _trace(11) == _trace(11)
    assert _trace(11) != _trace(12)


def test_a_restarted_member_refutes_its_death_and_rejoins() -> None:
    c, events = _cluster("abcd")
    c.run_for(2.0)
    c.crash("d")
    assert c.run_until_true(
        lambda: all("d" in names_of(node(c, n), "DEAD") for n in "abc"), c.now + 60.0)
    c.restart("d", ["a"])
    assert c.run_until_true(lambda: converged(c, "abcd"), c.now + 10.0)
    assert node(c, "d").local_member.incarnation > 1  # it had to refute its own death
    for n in "abc":
        joins = [e for e in events(n) if isinstance(e, MemberJoined) and e.member.name == "d"]
        assert len(joins) == 2
