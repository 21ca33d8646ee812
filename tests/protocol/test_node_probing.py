"""Probing (memberlist probeNode / handlePing / handleIndirectPing), gossip and user messages."""

from __future__ import annotations

import random

import pytest
from node_helpers import (
    IP,
    VSN,
    A,
    Run,
    add_members,
    addr_of,
    alive,
    datagrams,
    feed,
    make_node,
    packet,
    run_until,
    sent_messages,
    suspect,
)

from swimguard.config import Config
from swimguard.protocol import (
    MemberFailed,
    MemberState,
    MemberSuspected,
    PingCompleted,
    StreamClose,
    StreamOpen,
    StreamSend,
    UserMessage,
)
from swimguard.protocol.events import ReliableCompleted
from swimguard.protocol.node import Node
from swimguard.protocol.outgoing import Address, Outgoing
from swimguard.wire.messages import AckResp, ErrResp, IndirectPingReq, NackResp, Ping, Suspect
from swimguard.wire.packet import Message, UserData
from swimguard.wire.stream import (
    StreamDecoder,
    UserStream,
    encode_stream_message,
    frame_stream,
)

B = addr_of("b")


def _probe(node: Node, target: str) -> tuple[float, list[Outgoing]]:
    """Fire the node's timers until its probe round robin reaches `target`.

    Returns the time that probe started and what the node sent then. The members probed
    before it answer at once, so they stay healthy and the score stays where it was.
    """
    while True:
        due = node.next_deadline()
        assert due is not None
        node.handle_timeout(now=due)
        out = node.take_outgoing()
        pings = [m for m in sent_messages(out) if isinstance(m, Ping)]
        if any(p.node == target for p in pings):
            return due, out
        for p in pings:
            feed(node, AckResp(seq_no=p.seq_no), now=due)
        node.take_outgoing()
        node.take_events()


def _start_probe(node: Node, target: str) -> tuple[float, Ping]:
    """`_probe`, and the ping it sent."""
    t0, out = _probe(node, target)
    (ping,) = [m for m in sent_messages(out) if isinstance(m, Ping)]
    return t0, ping


def test_ping_is_acked_to_source_address() -> None:
    node = make_node()
    ping = Ping(seq_no=9, node="a", source_addr=IP, source_node="z", source_port=4444)
    node.receive_datagram(packet(ping), ("10.0.0.1", 1), now=0.0)
    ((to, msgs),) = datagrams(node.take_outgoing())
    assert to == ("127.0.0.1", 4444)
    assert msgs[0] == AckResp(seq_no=9, payload=None)


def test_ping_without_source_is_acked_to_sender_with_hook_payload() -> None:
    class Hooks:
        def ack_payload(self) -> bytes:
            return b"coord"

        def notify_ping_complete(self, member: object, rtt: float, payload: bytes) -> None:
            pass

    node = make_node(hooks=Hooks())
    node.receive_datagram(packet(Ping(seq_no=3)), ("10.0.0.1", 1), now=0.0)
    ((to, msgs),) = datagrams(node.take_outgoing())
    assert to == ("10.0.0.1", 1)
    assert msgs[0] == AckResp(seq_no=3, payload=b"coord")


def test_ping_for_another_name_is_dropped() -> None:
    node = make_node()
    feed(node, Ping(seq_no=3, node="zz"))
    assert node.take_outgoing() == []
    assert node.drops["ping_other_node"] == 1


def test_direct_probe_ack_completes_and_improves_health() -> None:
    rtts: list[float] = []

    class Hooks:
        def ack_payload(self) -> bytes:
            return b""

        def notify_ping_complete(self, member: object, rtt: float, payload: bytes) -> None:
            rtts.append(rtt)

    node = make_node(hooks=Hooks())
    add_members(node, "b")
    for _ in range(2):  # each refuted accusation of us costs a point: score 2
        feed(node, suspect("a", node.local_member.incarnation))
    assert node.health_score == 2
    node.take_outgoing()
    t0, ping = _start_probe(node, "b")
    assert ping.node == "b"
    assert ping.source_node == "a"
    assert ping.source_port == 7000
    feed(node, AckResp(seq_no=ping.seq_no, payload=b"p"), now=t0 + 0.01)
    ev = node.take_events()
    assert len(ev) == 1
    assert isinstance(ev[0], PingCompleted)
    assert ev[0].rtt == pytest.approx(0.01)
    assert ev[0].payload == b"p"
    assert rtts == [pytest.approx(0.01)]
    assert node.health_score == 1
    # The next probe tick comes one interval after this probe began, not stretched by the
    # score (with b the only peer, that tick finds the round robin at its end and waits).
    run = run_until(node, t0 + 1.5)
    assert [w for w in run.wakeups if w > t0 + 0.5] == [pytest.approx(t0 + 1.0)]


def test_failed_probe_sends_indirect_pings_tcp_fallback_then_suspects() -> None:
    node = make_node()
    add_members(node, "b", "c", "d", "e")
    t0, ping = _start_probe(node, "b")
    node.handle_timeout(now=t0 + 0.5)  # ProbeTimeout
    out = node.take_outgoing()
    reqs = [(to, m) for to, msgs in datagrams(out) for m in msgs if isinstance(m, IndirectPingReq)]
    assert len(reqs) == 3
    assert {to for to, _ in reqs} == {addr_of(n) for n in "cde"}
    for _, req in reqs:
        assert req.seq_no == ping.seq_no
        assert req.node == "b"
        assert req.target == IP
        assert req.port == B[1]
        assert req.nack
    opens = [o for o in out if isinstance(o, StreamOpen)]
    assert [o.to for o in opens] == [B]
    send = next(o for o in out if isinstance(o, StreamSend))
    assert StreamDecoder().feed(send.data) == ping
    # Two relays nack, one stays silent: awareness +1.
    feed(node, NackResp(seq_no=ping.seq_no), NackResp(seq_no=ping.seq_no), now=t0 + 0.7)
    node.handle_timeout(now=t0 + 1.0)
    out = node.take_outgoing()
    assert StreamClose(opens[0].stream_id) in out
    ev = node.take_events()
    assert [type(e) for e in ev] == [MemberSuspected]
    assert node.health_score == 1


def _second_probe_after_a_silent_failure() -> tuple[float, Node, Ping]:
    node = make_node()
    add_members(node, "b", "c", "d", "e")
    t0, _ = _start_probe(node, "b")
    node.handle_timeout(now=t0 + 0.5)
    node.handle_timeout(now=t0 + 1.0)
    assert node.health_score == 3
    (ping,) = [m for m in sent_messages(node.take_outgoing()) if isinstance(m, Ping)]
    node.take_events()
    return t0, node, ping


def test_failed_probe_without_nacks_scores_all_expected() -> None:
    t0, node, ping = _second_probe_after_a_silent_failure()
    feed(node, AckResp(seq_no=ping.seq_no), now=t0 + 1.2)
    assert node.health_score == 2


def test_a_low_health_score_stretches_the_probe_but_not_its_ping_timeout() -> None:
    # The next probe starts at once (a whole interval has passed) and waits (3 + 1) intervals:
    # the indirect pings still go out after probe_timeout (not scaled), the suspicion at 5 s.
    t0, node, ping = _second_probe_after_a_silent_failure()
    run = run_until(node, t0 + 6.0)
    relayed = [t for t, _, m in run.messages()
               if isinstance(m, IndirectPingReq) and m.seq_no == ping.seq_no]
    assert relayed
    assert min(relayed) == pytest.approx(t0 + 1.5)
    suspected = [t for t, e in run.events if isinstance(e, MemberSuspected)
                 and e.member.name == ping.node]
    assert suspected == [pytest.approx(t0 + 5.0)]


def test_old_protocol_relays_get_no_nack_and_score_one() -> None:
    node = make_node()
    old = bytes((1, 3, 2, 2, 5, 5))
    feed(node, alive("b"), alive("c", vsn=old), alive("d", vsn=old))
    node.take_events()
    node.take_outgoing()
    t0, _ = _start_probe(node, "b")
    node.handle_timeout(now=t0 + 0.5)
    reqs = [m for m in sent_messages(node.take_outgoing()) if isinstance(m, IndirectPingReq)]
    assert len(reqs) == 2
    assert not any(r.nack for r in reqs)
    node.handle_timeout(now=t0 + 1.0)
    assert node.health_score == 1


def test_indirect_ack_counts_as_success_without_ping_completed() -> None:
    node = make_node()
    add_members(node, "b", "c")
    t0, ping = _start_probe(node, "b")
    node.handle_timeout(now=t0 + 0.5)
    node.take_outgoing()
    feed(node, AckResp(seq_no=ping.seq_no), now=t0 + 0.6)
    assert node.take_events() == []
    assert node.member("b").state is MemberState.ALIVE  # type: ignore[union-attr]
    # The probe is over: its end (1 s after its start) suspects nobody.
    run = run_until(node, t0 + 1.0)
    assert not [e for _, e in run.events if isinstance(e, MemberSuspected)]
    assert node.member("b").state is MemberState.ALIVE  # type: ignore[union-attr]


def test_tcp_fallback_ack_saves_the_target() -> None:
    node = make_node()
    add_members(node, "b")
    t0, ping = _start_probe(node, "b")
    node.handle_timeout(now=t0 + 0.5)
    out = node.take_outgoing()
    (op,) = [o for o in out if isinstance(o, StreamOpen)]
    from swimguard.wire.stream import encode_stream_message, frame_stream

    reply = frame_stream(encode_stream_message(AckResp(seq_no=ping.seq_no)), compress=True,
                         keyring=None)
    node.stream_data(op.stream_id, reply, now=t0 + 0.7)
    assert StreamClose(op.stream_id) in node.take_outgoing()
    node.handle_timeout(now=t0 + 1.0)
    assert node.member("b").state is MemberState.ALIVE  # type: ignore[union-attr]
    assert node.health_score == 0


@pytest.mark.parametrize(
    ("config", "vsn"),
    [(Config.lan(disable_tcp_pings=True), VSN), (Config.lan(), bytes((1, 2, 2, 2, 5, 5)))],
)
def test_no_tcp_fallback_when_disabled_or_old_protocol(config: Config, vsn: bytes) -> None:
    node = make_node(config)
    feed(node, alive("b", vsn=vsn))
    node.take_outgoing()
    t0, _ = _start_probe(node, "b")
    node.handle_timeout(now=t0 + 0.5)
    assert not any(isinstance(o, StreamOpen) for o in node.take_outgoing())


def test_buddy_system_sends_suspect_with_the_ping() -> None:
    node = make_node()
    add_members(node, "b", "c")
    feed(node, suspect("b", 1, frm="c"))
    node.take_outgoing()
    _, out = _probe(node, "b")
    (to, msgs), *_gossip_rounds = [d for d in datagrams(out) if isinstance(d[1][0], Ping)]
    assert to == B
    assert isinstance(msgs[0], Ping)
    assert msgs[1] == Suspect(incarnation=1, node="b", from_="a")


def test_without_buddy_system_the_ping_is_plain() -> None:
    node = make_node(Config.lan(buddy_system=False))
    add_members(node, "b", "c")
    feed(node, suspect("b", 1, frm="c"))
    node.take_outgoing()
    _, out = _probe(node, "b")
    ((_to, msgs),) = [d for d in datagrams(out) if isinstance(d[1][0], Ping)]
    assert isinstance(msgs[0], Ping)
    # Only the queued gossip (c's suspicion) may ride along, not our own buddy suspect.
    assert not any(isinstance(m, Suspect) and m.from_ == "a" for m in msgs)


def test_relay_forwards_ack_with_origin_seq() -> None:
    node = make_node()
    req = IndirectPingReq(seq_no=77, target=IP, port=9999, node="t", nack=True,
                          source_addr=IP, source_node="o", source_port=5555)
    feed(node, req, now=0.0)
    ((to, msgs),) = datagrams(node.take_outgoing())
    assert to == ("127.0.0.1", 9999)
    ping = msgs[0]
    assert isinstance(ping, Ping)
    assert ping.node == "t"
    assert ping.seq_no != 77
    feed(node, AckResp(seq_no=ping.seq_no), now=0.1)
    ((to, msgs),) = datagrams(node.take_outgoing())
    assert to == ("127.0.0.1", 5555)
    assert msgs[0] == AckResp(seq_no=77)
    node.handle_timeout(now=1.0)
    assert node.take_outgoing() == []  # no nack after an ack


@pytest.mark.parametrize("want_nack", [True, False])
def test_relay_nacks_at_80_percent_of_probe_timeout_only_when_asked(want_nack: bool) -> None:
    # The paper's rule (memberlist's code waits the whole timeout): the requester asked one
    # probe timeout into its probe and stops counting nacks one probe interval in, so a nack
    # sent after a whole timeout (0.5 s of a 1 s interval on a LAN) would always be late.
    node = make_node()
    req = IndirectPingReq(seq_no=5, target=IP, port=9999, node="t", nack=want_nack,
                          source_addr=IP, source_node="o", source_port=5555)
    feed(node, req, now=0.0)
    (relayed,) = [m for m in sent_messages(node.take_outgoing()) if isinstance(m, Ping)]
    node.handle_timeout(now=0.39)
    assert node.take_outgoing() == []
    node.handle_timeout(now=0.4)
    msgs = sent_messages(node.take_outgoing())
    assert (NackResp(seq_no=5) in msgs) is want_nack
    # An ack within the whole timeout is still relayed, after the nack (counts as success).
    feed(node, AckResp(seq_no=relayed.seq_no), now=0.45)
    assert [m for m in sent_messages(node.take_outgoing()) if isinstance(m, AckResp)] == [
        AckResp(seq_no=5)
    ]
    node.handle_timeout(now=0.5)
    assert node.take_outgoing() == []


def test_relay_forgets_its_ping_after_the_whole_probe_timeout() -> None:
    node = make_node()
    req = IndirectPingReq(seq_no=5, target=IP, port=9999, node="t", nack=True,
                          source_addr=IP, source_node="o", source_port=5555)
    feed(node, req, now=0.0)
    (relayed,) = [m for m in sent_messages(node.take_outgoing()) if isinstance(m, Ping)]
    node.handle_timeout(now=0.4)
    assert NackResp(seq_no=5) in sent_messages(node.take_outgoing())
    node.handle_timeout(now=0.5)
    assert node.take_outgoing() == []  # one nack only
    feed(node, AckResp(seq_no=relayed.seq_no), now=0.6)
    assert node.take_outgoing() == []
    assert node.drops["late_ack"] == 1


def _gossip(out: list[Outgoing]) -> list[tuple[Address, list[Message]]]:
    """The gossip datagrams among `out` (not the probes, which also carry broadcasts)."""
    return [(to, msgs) for to, msgs in datagrams(out) if not isinstance(msgs[0], Ping)]


def _gossip_round(node: Node) -> tuple[float, list[tuple[Address, list[Message]]]]:
    """Fire deadlines until one gossip round has gone out; its time and datagrams."""
    while True:
        due = node.next_deadline()
        assert due is not None
        sent = _gossip([o for _, o in run_until(node, due).sent])
        if sent:
            return due, sent


def test_gossip_sends_queued_broadcasts_to_gossip_nodes() -> None:
    node = make_node()
    add_members(node, "b", "c", "d", "e", "f")
    feed(node, alive("g"))
    node.take_outgoing()
    _, sent = _gossip_round(node)
    assert len(sent) == 3
    assert len({to for to, _ in sent}) == 3


def test_each_broadcast_is_sent_retransmit_limit_times() -> None:
    node = make_node(Config.lan(retransmit_mult=2))
    add_members(node, "b", "c")  # n = 3: limit = 2 * ceil(log10 4) = 2
    run = Run()
    while node.broadcasts_queued:
        run_until(node, run.now + 0.1, run=run, answer_pings=True)
    feed(node, alive("b", 2, meta=b"m"), now=run.now)
    run = run_until(node, run.now + 10.0, answer_pings=True)
    assert sum(1 for _, _, m in run.messages() if getattr(m, "meta", None) == b"m") == 2


def test_gossip_to_the_dead_only_within_the_window() -> None:
    node = make_node()
    add_members(node, "b")
    feed(node, suspect("b", 1), now=0.0)
    node.handle_timeout(now=4.0)  # b dead at t=4
    node.take_outgoing()
    node.broadcast(b"hello", now=5.0)
    run = run_until(node, 10.0)
    assert {to for _, to, m in run.messages() if m == UserData(b"hello")} == {B}
    # Past the window only the living get gossip: c, who joins at 39 s, is the control.
    feed(node, alive("c"), now=39.0)
    node.take_events()
    node.broadcast(b"again", now=40.0)
    run = run_until(node, 41.0)
    assert {to for _, to, m in run.messages() if m == UserData(b"again")} == {addr_of("c")}


def test_user_broadcasts_piggyback_and_keys_replace() -> None:
    node = make_node()
    add_members(node, "b")
    run = Run()
    while node.broadcasts_queued:
        run_until(node, run.now + 0.1, run=run, answer_pings=True)
    now = run.now
    node.broadcast(b"v1", now=now, key="k")
    node.broadcast(b"v2", now=now, key="k")
    node.broadcast(b"other", now=now)
    feed(node, Ping(seq_no=1, node="a"), now=now)
    msgs = sent_messages(node.take_outgoing())
    assert isinstance(msgs[0], AckResp)
    assert set(msgs[1:]) == {UserData(b"v2"), UserData(b"other")}
    with pytest.raises(ValueError, match="fit"):
        node.broadcast(b"x" * 1500, now=now)


def test_broadcast_hook_contributes_user_messages() -> None:
    class Hooks:
        def get_broadcasts(self, overhead: int, limit: int) -> list[bytes]:
            assert overhead == 3
            return [b"serf-event"]

    node = make_node(hooks=Hooks())
    add_members(node, "b")
    feed(node, Ping(seq_no=1, node="a"))
    assert UserData(b"serf-event") in sent_messages(node.take_outgoing())


def test_user_messages_by_udp_and_stream() -> None:
    got: list[bytes] = []

    class Hooks:
        def notify_message(self, data: bytes) -> None:
            got.append(data)

    node = make_node(hooks=Hooks())
    feed(node, UserData(b"udp"))
    sid = node.stream_accepted(("127.0.0.1", 1), now=0.0)
    from swimguard.wire.stream import encode_stream_message, frame_stream

    node.stream_data(sid, frame_stream(encode_stream_message(UserStream(b"tcp")), compress=False,
                                       keyring=None), now=0.0)
    assert node.take_events() == [UserMessage(b"udp"), UserMessage(b"tcp")]
    assert got == [b"udp", b"tcp"]
    assert node.take_outgoing() == [StreamClose(sid)]


def test_send_best_effort_and_reliable() -> None:
    node = make_node()
    add_members(node, "b")
    node.send_best_effort(B, b"hi", now=0.0)
    (dg,) = node.take_outgoing()
    assert datagrams([dg]) == [(B, [UserData(b"hi")])]
    node.send_reliable(B, b"big", now=0.0)
    out = node.take_outgoing()
    assert isinstance(out[0], StreamOpen)
    assert out[0].to == B
    assert isinstance(out[1], StreamSend)
    assert StreamDecoder().feed(out[1].data) == UserStream(b"big")
    assert len(out) == 2  # the receiver closes once it has read it
    sid = out[0].stream_id
    node.take_events()
    node.stream_closed(sid, now=0.1)  # EOF: delivered
    assert not node.drops
    assert node.take_events() == [ReliableCompleted(sid, B, None)]
    call = node.send_reliable(B, b"lost", now=1.0)
    sid = node.take_outgoing()[0].stream_id  # type: ignore[union-attr]
    assert call == sid
    node.stream_closed(sid, now=1.1, error="connection refused")
    assert node.drops["reliable_failed"] == 1
    assert node.take_events() == [ReliableCompleted(sid, B, "connection refused")]
    call = node.send_reliable(B, b"hung", now=2.0)
    node.take_outgoing()
    node.handle_timeout(now=12.0)
    assert StreamClose(call) in node.take_outgoing()
    assert node.drops["reliable_failed"] == 2
    assert ReliableCompleted(call, B, "timeout") in node.take_events()
    # memberlist answers a stream it could not read with an error: not delivered.
    call = node.send_reliable(B, b"refused", now=13.0)
    node.take_outgoing()
    node.stream_data(call, frame_stream(encode_stream_message(ErrResp(error="bad label")),
                                        compress=False, keyring=None), now=13.1)
    assert node.take_events() == [ReliableCompleted(call, B, "the receiver answered: bad label")]
    assert node.take_outgoing() == [StreamClose(call)]
    assert node.drops["reliable_failed"] == 3


def test_send_reliable_refuses_a_message_over_the_stream_limit() -> None:
    node = make_node(config=Config.lan(max_stream_bytes=4096))
    with pytest.raises(ValueError, match=r"Config.max_stream_bytes\) is 4096"):
        node.send_reliable(B, random.Random(1).randbytes(5000), now=0.0)  # incompressible
    assert node.take_outgoing() == []


def test_bad_datagrams_are_counted_not_raised() -> None:
    node = make_node()
    for junk in (b"", b"\x00", b"\xff\xff", b"\x07\x05\x00", b"\x04\x81\xa4Node\x05",
                 bytes(range(40))):
        node.receive_datagram(junk, ("1.2.3.4", 5), now=0.0)
    assert sum(node.drops.values()) >= 5
    assert node.take_outgoing() == []


def test_stale_acks_and_nacks_are_counted() -> None:
    node = make_node()
    feed(node, AckResp(seq_no=999), NackResp(seq_no=999))
    assert node.drops["late_ack"] == 1
    assert node.drops["late_nack"] == 1


def test_probe_round_robin_visits_every_member() -> None:
    node = make_node()
    names = [f"n{i}" for i in range(10)]
    add_members(node, *names)
    run = run_until(node, 25.0, answer_pings=True)
    seen = [m.node for _, _, m in run.messages() if isinstance(m, Ping)]
    assert len(seen) >= 20
    assert set(seen[:10]) == set(names)
    assert set(seen[10:]) == set(names)


def test_loop_lag_raises_health_and_pushes_probe_deadlines() -> None:
    node = make_node()
    add_members(node, "b")
    t0, _ = _start_probe(node, "b")
    node.report_loop_lag(0.1, now=t0 + 0.1)  # below 0.25 s: nothing
    assert node.health_score == 0
    node.report_loop_lag(3.0, now=t0 + 3.5)
    assert node.health_score == 6
    assert node.stalls == 1
    # The probe's stages moved by the stall: the TCP fallback 3.5 s in, the end at 4 s.
    run = run_until(node, t0 + 4.0)
    fallback = [t for t, o in run.sent if isinstance(o, StreamOpen)]
    assert fallback == [pytest.approx(t0 + 3.5)]  # t0 + 0.5 without the stall
    suspected = run.first(MemberSuspected)
    assert suspected is not None
    assert suspected[0] == pytest.approx(t0 + 4.0)


def test_loop_lag_can_be_switched_off() -> None:
    node = make_node(Config.lan(loop_lag_health=False))
    node.report_loop_lag(3.0, now=3.0)
    assert node.health_score == 0
    assert node.stalls == 0


def test_a_stall_postpones_running_suspicions() -> None:
    node = make_node()
    add_members(node, "b", "c")
    feed(node, suspect("b", 1, frm="c"), now=0.0)
    node.report_loop_lag(5.0, now=5.0)
    run = run_until(node, 10.0, answer_pings=True)
    failed = [t for t, e in run.events if isinstance(e, MemberFailed) and e.member.name == "b"]
    assert failed == [pytest.approx(9.0)]  # 4 s of suspicion, moved by the 5 s stall


def test_advertise_must_be_an_ip() -> None:
    import random

    from swimguard.errors import UsageError

    with pytest.raises(UsageError):
        Node(Config.lan(), name="a", advertise=("localhost", 1), rng=random.Random(), now=0.0)
    with pytest.raises(UsageError):
        Node(Config.lan(), name="", advertise=A, rng=random.Random(), now=0.0)


def test_user_broadcast_queue_is_bounded() -> None:
    node = make_node(Config.lan(max_user_broadcasts=10))
    add_members(node, "b")
    for i in range(25):
        node.broadcast(f"m{i}".encode(), now=0.0)
    assert node.drops["user_broadcast_overflow"] == 15
    run = run_until(node, 30.0, answer_pings=True)
    assert len({m for _, _, m in run.messages() if isinstance(m, UserData)}) == 10


def test_gossip_sleeps_while_idle_and_wakes_on_its_cadence() -> None:
    node = make_node(Config.lan(gossip_interval=0.2))
    add_members(node, "b")
    # Our own alive and b's news go out in gossip rounds on the 0.2 s cadence...
    run = run_until(node, 4.0, answer_pings=True)
    assert node.broadcasts_queued == 0
    rounds = [t for t, o in run.sent if _gossip([o])]
    assert rounds
    # ... then gossip sleeps: an idle second wakes the node for its probe, not 5 rounds.
    idle = run_until(node, 5.0, answer_pings=True)
    assert len(idle.wakeups) <= 2
    assert not _gossip([o for _, o in idle.sent])
    node.broadcast(b"x", now=5.05)
    woke, _ = _gossip_round(node)
    assert woke >= 5.05
    assert woke - 5.05 < 0.2
    phase = (woke - rounds[0]) / 0.2  # back on the old cadence
    assert phase == pytest.approx(round(phase))


def test_disabled_gossip_never_ticks() -> None:
    node = make_node(Config.lan(gossip_interval=0.0))
    add_members(node, "b")
    node.broadcast(b"x", now=1.0)
    run = run_until(node, 5.0, answer_pings=True)
    assert UserData(b"x") in [m for _, _, m in run.messages()]  # on a probe's ping
    assert not _gossip([o for _, o in run.sent])


def test_lag_debt_decays_with_on_time_reports_even_at_zero_lag() -> None:
    node = make_node(Config.lan(lha_probe=False))
    node.report_loop_lag(1.2, now=10.0)
    assert node.health_score == 3
    for t in (10.5, 11.0, 12.0, 13.0, 14.0):
        node.report_loop_lag(0.0, now=t)
    assert node.health_score == 0


def test_hook_broadcasts_over_budget_are_skipped() -> None:
    class Hooks:
        def get_broadcasts(self, overhead: int, limit: int) -> list[bytes]:
            return [b"x" * 5000, b"", b"fits"]

    node = make_node(hooks=Hooks())
    add_members(node, "b")
    feed(node, Ping(seq_no=1, node="a"))
    msgs = sent_messages(node.take_outgoing())
    assert UserData(b"fits") in msgs
    assert all(not (isinstance(m, UserData) and len(m.data) > 1400) for m in msgs)
