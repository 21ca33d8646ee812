"""Two to five Nodes wired together by the in-test router (NodePair-style exchanges)."""

from __future__ import annotations

import pytest
from protocol_router import Cluster, names_of

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
from swimguard.wire.encryption import Keyring
from swimguard.wire.messages import Ping, Suspect
from swimguard.wire.packet import decode_packet


def converged(c: Cluster, names: str) -> bool:
    want = set(names)
    return all(names_of(c.node(n), "ALIVE") == want for n in names)


def _cluster(names: str = "abc", config: Config | None = None, **kw: object) -> Cluster:
    c = Cluster(config or Config.lan(), **kw)  # type: ignore[arg-type]
    for n in names:
        c.add(n)
    c.join_all()
    assert c.run_until(lambda: converged(c, names), 2.0)
    return c


def test_push_pull_join_reports_and_converges() -> None:
    c = Cluster()
    c.add("a")
    c.add("b")
    c.call("b", lambda n: n.join([c.peers["a"].addr], c.now))
    assert c.run_until(lambda: converged(c, "ab"), 0.1)  # one round trip
    assert JoinCompleted(joined=1, errors=()) in c.events("b")
    assert [e.member.name for e in c.events("a") if isinstance(e, MemberJoined)] == ["a", "b"]


def test_join_with_a_dead_seed_reports_the_error() -> None:
    c = Cluster()
    c.add("a")
    c.add("b")
    c.crash("b")
    c.call("a", lambda n: n.join([c.peers["b"].addr, ("127.0.0.1", 1)], c.now))
    c.run(1.0)
    (done,) = [e for e in c.events("a") if isinstance(e, JoinCompleted)]
    assert done.joined == 0
    assert len(done.errors) == 2
    assert "connection refused" in done.errors[0]


def test_join_times_out_when_the_seed_never_answers() -> None:
    c = Cluster(Config.local())
    c.add("a")
    c.add("b")
    c.stall("b", 100.0)
    c.call("a", lambda n: n.join([c.peers["b"].addr], c.now))
    c.run(2.0)
    (done,) = [e for e in c.events("a") if isinstance(e, JoinCompleted)]
    assert done.joined == 0
    assert "timeout" in done.errors[0]


def test_join_is_refused_on_incompatible_delegate_versions() -> None:
    c = Cluster()
    c.add("a")
    c.add("b", config=Config.lan(delegate_protocol_min=0, delegate_protocol_max=0,
                                 delegate_protocol_version=0))
    c.call("b", lambda n: n.join([c.peers["a"].addr], c.now))
    c.run(0.5)
    (done,) = [e for e in c.events("b") if isinstance(e, JoinCompleted)]
    assert done.joined == 0
    assert "incompatible" in done.errors[0]
    assert c.node("a").drops["incompatible_version"] == 1


def test_probes_are_acked_and_nobody_is_suspected() -> None:
    c = _cluster("abcde")
    c.run(30.0)
    for n in "abcde":
        assert not any(isinstance(e, MemberSuspected | MemberFailed) for e in c.events(n))
        assert sum(isinstance(e, PingCompleted) for e in c.events(n)) >= 25
        assert c.node(n).health_score == 0
        assert dict(c.node(n).drops).keys() <= {"late_ack"}


def test_crash_is_detected_by_every_survivor() -> None:
    c = _cluster("abcde")
    c.run(5.0)
    c.crash("e")
    t0 = c.now
    assert c.run_until(lambda: all("e" in names_of(c.node(n), "DEAD") for n in "abcd"), 60.0)
    # LAN, n=5: k=2, max suspicion 24 s; confirmations from 4 suspecters bring it to min 4 s.
    assert c.now - t0 < 15.0
    for n in "abcd":
        assert [e.member.name for e in c.events(n) if isinstance(e, MemberFailed)] == ["e"]


def test_graceful_leave_is_seen_as_left_never_failed() -> None:
    c = _cluster("abcd")
    c.run(3.0)
    c.call("d", lambda n: n.leave(c.now, 5.0))
    assert c.run_until(lambda: LeaveCompleted(timed_out=False) in c.events("d"), 5.0)
    c.crash("d")
    assert c.run_until(lambda: all("d" in names_of(c.node(n), "LEFT") for n in "abc"), 5.0)
    c.run(60.0)
    for n in "abc":
        assert not any(isinstance(e, MemberFailed | MemberSuspected) for e in c.events(n))
        assert any(isinstance(e, MemberLeft) and e.member.name == "d" for e in c.events(n))


def test_leave_alone_completes_at_once_and_leave_times_out_without_gossip() -> None:
    c = Cluster()
    c.add("a")
    c.call("a", lambda n: n.leave(c.now, 1.0))
    assert c.events("a")[-1] == LeaveCompleted(timed_out=False)
    c = _cluster("ab", Config.lan(gossip_interval=0.0))
    c.drop = lambda src, dst, data: True  # nothing gets through: no piggyback either
    c.call("b", lambda n: n.leave(c.now, 1.0))
    c.run(2.0)
    assert LeaveCompleted(timed_out=True) in c.events("b")


def test_false_suspicion_is_refuted() -> None:
    c = _cluster("abcd", Config.lan(disable_tcp_pings=True))
    c.run(2.0)
    # d goes mute (its datagrams are lost) but still hears everything: it gets suspected,
    # hears the suspicion and refutes; once its packets flow again the refutation wins.
    d = c.peers["d"].addr
    c.drop = lambda src, dst, data: src == d
    assert c.run_until(
        lambda: any(isinstance(e, MemberSuspected) for n in "abc" for e in c.events(n)), 20)
    assert c.run_until(lambda: c.node("d").local_member.incarnation > 1, 5)
    c.drop = None
    c.run(40.0)
    for n in "abc":
        assert c.node(n).member("d").state is MemberState.ALIVE  # type: ignore[union-attr]
        assert not any(isinstance(e, MemberFailed) for e in c.events(n))


def test_indirect_probe_saves_a_member_behind_a_broken_direct_link() -> None:
    c = _cluster("abcde", Config.lan(disable_tcp_pings=True))
    a, b = c.peers["a"].addr, c.peers["b"].addr
    # Only UDP between a and b is lost; the relays (c, d, e) reach b fine.
    c.drop = lambda src, dst, data: bool(data) and {src, dst} == {a, b}
    c.run(30.0)
    assert not any(isinstance(e, MemberSuspected) for e in c.events("a"))


def test_tcp_fallback_saves_a_member_when_udp_to_it_is_lost() -> None:
    c = _cluster("ab")
    a, b = c.peers["a"].addr, c.peers["b"].addr
    c.drop = lambda src, dst, data: bool(data) and {src, dst} == {a, b}
    c.run(20.0)
    assert not any(isinstance(e, MemberSuspected) for e in c.events("a"))
    assert c.node("a").health_score == 0


def test_buddy_system_piggybacks_the_suspicion_on_the_ping() -> None:
    c = _cluster("ab", Config.lan(gossip_interval=0.0))  # no gossip rounds
    a_node, b_node = c.node("a"), c.node("b")
    c.run(1.0)
    # a suspects b but its broadcast queue is empty: only the buddy system can tell b.
    a_node._membership.suspect_node(Suspect(incarnation=1, node="b", from_="a"), c.now)
    a_node._tx.member_q.reset()
    c._drain("a")
    pings_with_suspect: list[bool] = []
    a, b = c.peers["a"].addr, c.peers["b"].addr

    def watch(src: tuple[str, int], dst: tuple[str, int], data: bytes) -> bool:
        if src == a and dst == b and data:
            msgs = decode_packet(data)
            if isinstance(msgs[0], Ping):
                pings_with_suspect.append(Suspect(1, "b", "a") in msgs)
        return False

    c.drop = watch
    assert c.run_until(lambda: b_node.local_member.incarnation > 1, 5.0)
    assert pings_with_suspect == [True]
    c.run(2.0)
    assert a_node.member("b").state is MemberState.ALIVE  # type: ignore[union-attr]


def test_swim_only_run_works() -> None:
    c = _cluster("abcd", Config.swim())
    c.run(5.0)
    c.crash("d")
    t0 = c.now
    assert c.run_until(lambda: all("d" in names_of(c.node(n), "DEAD") for n in "abc"), 30.0)
    assert c.now - t0 < 10.0  # fixed 4 s suspicion + probe period
    assert all(c.node(n).health_score == 0 for n in "abc")


def test_user_messages_and_broadcasts_reach_peers() -> None:
    c = _cluster("abc")
    c.call("a", lambda n: n.broadcast(b"news", c.now))
    c.call("a", lambda n: n.send_reliable(c.peers["b"].addr, b"direct", c.now))
    c.call("a", lambda n: n.send_best_effort(c.peers["c"].addr, b"quick", c.now))
    c.run(3.0)
    assert UserMessage(b"news") in c.events("b")
    assert UserMessage(b"news") in c.events("c")
    assert UserMessage(b"direct") in c.events("b")
    assert UserMessage(b"quick") in c.events("c")


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
    c = Cluster()
    c.add("a", hooks=ha)
    c.add("b", hooks=hb)
    c.call("b", lambda n: n.join([c.peers["a"].addr], c.now))
    c.run(0.1)
    assert ha.got == [(b"state-of-b", True)]
    assert hb.got == [(b"state-of-a", True)]
    assert RemoteState(b"state-of-a", True) in c.events("b")


def test_periodic_push_pull_repairs_a_missed_update() -> None:
    c = _cluster("abc", Config.local(gossip_interval=0.0, push_pull_interval=2.0))
    # Meta updates are normally gossiped; with gossip rounds off and no piggyback path
    # reaching c, only anti-entropy can carry it.
    c.drop = lambda src, dst, data: bool(data) and dst == c.peers["c"].addr
    c.call("a", lambda n: n.update_meta(b"v2", c.now))
    assert c.run_until(lambda: c.node("c").member("a").meta == b"v2", 10.0)  # type: ignore[union-attr]


def test_encrypted_cluster_and_wrong_key_is_counted() -> None:
    key = bytes(range(32))
    c = Cluster()
    c.add("a", keyring=Keyring([key]))
    c.add("b", keyring=Keyring([key]))
    c.add("x", keyring=Keyring([bytes(32)]))
    c.call("b", lambda n: n.join([c.peers["a"].addr], c.now))
    c.call("x", lambda n: n.join([c.peers["a"].addr], c.now))
    c.run(5.0)
    assert names_of(c.node("a"), "ALIVE") == {"a", "b"}
    assert sum(c.node("a").drops.values()) >= 1
    (done,) = [e for e in c.events("x") if isinstance(e, JoinCompleted)]
    assert done.joined == 0


def test_label_mismatch_is_rejected() -> None:
    c = Cluster()
    c.add("a", label=b"prod")
    c.add("b", label=b"test")
    c.call("b", lambda n: n.join([c.peers["a"].addr], c.now))
    c.run(1.0)
    assert names_of(c.node("a"), "ALIVE") == {"a"}
    assert c.node("a").drops


@pytest.mark.parametrize("loop_lag", [False, True])
def test_stalled_node_and_loop_lag(loop_lag: bool) -> None:
    """a freezes for 3 s right after sending a probe; on waking its timers fire before it
    reads the ack that arrived meanwhile (worst case, as Go's random `select` may do).
    Without the loop-lag input it accuses the healthy target; with it, it does not."""
    cfg = Config.lan(loop_lag_health=loop_lag)
    c = _cluster("abcde", cfg, seed=3)
    a = c.node("a")
    for _ in range(5):
        c.run(2.0)
        assert c.run_until(lambda: a._prober.probe is not None, 5.0)
        c.stall("a", 3.0)
        c.run(10.0)
    suspicions = sum(isinstance(e, MemberSuspected) for e in c.events("a"))
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
                       for e in c.events(n))


def _trace(seed: int) -> list[str]:
    c = _cluster("abcde", seed=seed)
    c.run(5.0)
    c.crash("c")
    c.run(20.0)
    return [f"{n}:{e!r}" for n in "abde" for e in c.events(n)]


def test_same_seed_same_run() -> None:
    assert _trace(11) == _trace(11)
    assert _trace(11) != _trace(12)


def test_a_restarted_member_refutes_its_death_and_rejoins() -> None:
    c = _cluster("abcd")
    c.run(2.0)
    c.crash("d")
    assert c.run_until(lambda: all("d" in names_of(c.node(n), "DEAD") for n in "abc"), 60.0)
    c.restart("d")
    c.call("d", lambda n: n.join([c.peers["a"].addr], c.now))
    assert c.run_until(lambda: converged(c, "abcd"), 10.0)
    assert c.node("d").local_member.incarnation > 1  # it had to refute its own death
    for n in "abc":
        joins = [e for e in c.events(n) if isinstance(e, MemberJoined) and e.member.name == "d"]
        assert len(joins) == 2
