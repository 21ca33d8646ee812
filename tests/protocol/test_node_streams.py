"""The stream side of a Node: push/pull acceptor and initiator, TCP ping replies, limits."""

from __future__ import annotations

import itertools

import pytest
from node_helpers import (
    VSN,
    A,
    add_members,
    addr_of,
    framed,
    make_node,
    push_pull,
    push_pull_in,
    replies,
    run_until,
    state,
)

from swimguard.config import Config
from swimguard.protocol import (
    JoinCompleted,
    Member,
    MemberState,
    RemoteState,
    StreamClose,
    StreamOpen,
    StreamSend,
    UserMessage,
)
from swimguard.protocol.node import Node
from swimguard.wire.encryption import Keyring
from swimguard.wire.messages import AckResp, ErrResp, Ping
from swimguard.wire.stream import (
    PushPull,
    StreamDecoder,
    UserStream,
    encode_stream_message,
)

PEER = ("127.0.0.1", 5555)


def test_acceptor_replies_with_full_state_then_merges() -> None:
    class Hooks:
        def local_state(self, join: bool) -> bytes:
            return b"mine" if join else b"periodic"

        def merge_remote_state(self, data: bytes, join: bool) -> None:
            pass

    node = make_node(hooks=Hooks())
    add_members(node, "b")
    sid = node.stream_accepted(PEER, now=0.0)
    node.stream_data(sid, framed(push_pull(state("c"), state("b", st=2), user=b"theirs")), now=0.0)
    out = node.take_outgoing()
    (reply,) = replies(out, sid)
    assert isinstance(reply, PushPull)
    assert reply.header.join is True
    assert reply.user_state == b"mine"
    assert {s.name for s in reply.states} == {"a", "b"}  # sent before merging
    assert out[-1] == StreamClose(sid)
    assert node.member("c").state is MemberState.ALIVE  # type: ignore[union-attr]
    assert node.member("b").state is MemberState.SUSPECT  # type: ignore[union-attr]
    assert RemoteState(b"theirs", True) in node.take_events()


def test_acceptor_copes_with_bytes_arriving_one_at_a_time() -> None:
    node = make_node()
    sid = node.stream_accepted(PEER, now=0.0)
    data = framed(push_pull(state("c")))
    for i in range(len(data)):
        node.stream_data(sid, data[i : i + 1], now=0.0)
    assert node.member("c") is not None


def test_tcp_ping_is_acked_without_payload_and_wrong_name_is_ignored() -> None:
    node = make_node()
    sid = node.stream_accepted(PEER, now=0.0)
    node.stream_data(sid, framed(Ping(seq_no=42, node="a")), now=0.0)
    out = node.take_outgoing()
    assert replies(out, sid) == [AckResp(seq_no=42, payload=None)]
    assert out[-1] == StreamClose(sid)
    sid = node.stream_accepted(PEER, now=0.0)
    node.stream_data(sid, framed(Ping(seq_no=43, node="zz")), now=0.0)
    assert node.take_outgoing() == [StreamClose(sid)]


def test_garbage_stream_gets_an_error_reply_and_is_counted() -> None:
    node = make_node()
    sid = node.stream_accepted(PEER, now=0.0)
    node.stream_data(sid, b"\x0d\x00garbage" * 3, now=0.0)
    out = node.take_outgoing()
    (reply,) = replies(out, sid)
    assert isinstance(reply, ErrResp)
    assert out[-1] == StreamClose(sid)
    assert sum(node.drops.values()) == 1


def test_silent_stream_is_cut_off_at_tcp_timeout() -> None:
    node = make_node(Config.lan(tcp_timeout=2.0, push_pull_interval=0.0))
    sid = node.stream_accepted(PEER, now=0.0)
    node.handle_timeout(now=1.9)
    assert StreamClose(sid) not in node.take_outgoing()
    node.handle_timeout(now=2.0)
    assert StreamClose(sid) in node.take_outgoing()
    assert node.drops["stream_timeout"] == 1
    node.stream_data(sid, b"late", now=3.0)  # ignored, no crash
    assert node.take_outgoing() == []


def test_inbound_streams_are_bounded() -> None:
    node = make_node(Config.lan(max_inbound_streams=2))
    s1 = node.stream_accepted(PEER, now=0.0)
    node.stream_accepted(PEER, now=0.0)
    s3 = node.stream_accepted(PEER, now=0.0)
    assert node.take_outgoing() == [StreamClose(s3)]
    assert node.drops["too_many_streams"] == 1
    node.stream_closed(s1, now=0.1)  # peer went away: a slot frees up
    s4 = node.stream_accepted(PEER, now=0.2)
    assert node.take_outgoing() == []
    assert s4 != s3


def test_stream_size_bound() -> None:
    node = make_node(Config.lan(max_stream_bytes=1024))
    sid = node.stream_accepted(PEER, now=0.0)
    big = framed(push_pull(*[state(f"n{i}") for i in range(100)]), keyring=None)
    node.stream_data(sid, big, now=0.0)
    assert sum(node.drops.values()) == 1
    assert node.member("n1") is None


def _join(node: Node) -> int:
    node.join([PEER], now=0.0)
    out = node.take_outgoing()
    (op,) = [o for o in out if isinstance(o, StreamOpen)]
    (send,) = [o for o in out if isinstance(o, StreamSend)]
    req = StreamDecoder().feed(send.data)
    assert isinstance(req, PushPull)
    assert req.header.join is True
    assert [s.name for s in req.states] == ["a"]
    assert req.states[0].vsn == VSN
    return op.stream_id


def test_join_initiator_merges_reply() -> None:
    node = make_node()
    sid = _join(node)
    node.stream_data(sid, framed(push_pull(state("p"), state("q", st=3))), now=0.01)
    assert StreamClose(sid) in node.take_outgoing()
    ev = node.take_events()
    assert JoinCompleted(joined=1, errors=()) in ev
    assert node.member("p").state is MemberState.ALIVE  # type: ignore[union-attr]
    assert node.member("q") is None  # news of a left member we never knew: ignored


def test_join_error_reply_and_connect_failure() -> None:
    node = make_node()
    sid = _join(node)
    node.stream_data(sid, framed(ErrResp(error="boom")), now=0.01)
    (done,) = [e for e in node.take_events() if isinstance(e, JoinCompleted)]
    assert done.joined == 0
    assert "boom" in done.errors[0]
    sid = _join(node)
    node.stream_closed(sid, now=0.02, error="connection refused")
    (done,) = [e for e in node.take_events() if isinstance(e, JoinCompleted)]
    assert "connection refused" in done.errors[0]


def test_join_without_seeds_completes_at_once() -> None:
    node = make_node()
    node.join([], now=0.0)
    assert node.take_events() == [JoinCompleted(joined=0, errors=())]


def test_merge_hook_can_veto_a_join() -> None:
    class Hooks:
        def notify_merge(self, peers: list[Member]) -> str | None:
            return "not this cluster" if any(p.name == "evil" for p in peers) else None

    node = make_node(hooks=Hooks())
    sid = _join(node)
    node.stream_data(sid, framed(push_pull(state("evil"))), now=0.01)
    (done,) = [e for e in node.take_events() if isinstance(e, JoinCompleted)]
    assert done.errors == (f"{PEER[0]}:{PEER[1]}: not this cluster",)
    assert node.member("evil") is None


def test_periodic_push_pull_picks_an_alive_peer_and_rescales() -> None:
    node = make_node(Config.lan(push_pull_interval=30.0))
    add_members(node, "b")
    node.take_outgoing()
    run = run_until(node, 100.0, answer_pings=True)
    opens = [(t, o) for t, o in run.sent if isinstance(o, StreamOpen)]  # push/pulls only
    assert {o.to for _, o in opens} == {addr_of("b")}
    times = [t for t, _ in opens]
    assert len(times) >= 3
    assert all(b - a == pytest.approx(30.0) for a, b in itertools.pairwise(times))
    names = [f"n{i}" for i in range(40)]
    add_members(node, *names, now=run.now)  # 42 members: x2
    run = run_until(node, run.now + 200.0, answer_pings=True)
    times = [t for t, o in run.sent if isinstance(o, StreamOpen)]
    assert len(times) >= 3
    # The push/pull armed before the members came keeps its time; every later one is 60 s on.
    assert all(b - a == pytest.approx(60.0) for a, b in itertools.pairwise(times))


def test_reliable_user_message_over_an_encrypted_stream() -> None:
    ring = Keyring([bytes(16)])
    node = make_node(keyring=ring)
    sid = node.stream_accepted(PEER, now=0.0)
    node.stream_data(sid, framed(UserStream(b"secret"), keyring=ring), now=0.0)
    assert node.take_events() == [UserMessage(b"secret")]
    sid = node.stream_accepted(PEER, now=0.0)
    node.stream_data(sid, framed(UserStream(b"plain")), now=0.0)  # unencrypted: refused
    assert sum(node.drops.values()) == 1


def test_a_node_advertising_ipv6_works() -> None:
    import random

    node = Node(Config.lan(), name="v6", advertise=("::1", 7946), rng=random.Random(1), now=0.0)
    assert node.local_member.addr == ("::1", 7946)
    pp = push_pull_in(node)
    assert pp.states[0].addr == b"\x00" * 15 + b"\x01"
    assert node.local_member.addr != A


def test_a_stall_extends_the_deadline_of_a_stream_we_opened() -> None:
    node = make_node(Config.lan(tcp_timeout=2.0))
    sid = _join(node)
    node.report_loop_lag(5.0, now=6.0)
    node.handle_timeout(now=6.0)
    assert StreamClose(sid) not in node.take_outgoing()
    node.handle_timeout(now=7.0)
    assert StreamClose(sid) in node.take_outgoing()


def test_an_inbound_stream_deadline_is_absolute_under_loop_lag() -> None:
    # A hostile stream can cause the lag itself (issue 10: a stream lived 27.6 s
    # against a 10 s tcp_timeout): stalls must not move its deadline.
    node = make_node(Config.lan(tcp_timeout=2.0))
    sid = node.stream_accepted(PEER, now=0.0)
    node.stream_data(sid, b"\x06", now=0.5)  # a push/pull that never completes
    node.report_loop_lag(1.0, now=1.5)
    node.handle_timeout(now=1.5)
    assert node.stalls == 1
    assert StreamClose(sid) not in node.take_outgoing()
    node.report_loop_lag(0.0, now=2.0)
    node.handle_timeout(now=2.0)
    assert StreamClose(sid) in node.take_outgoing()
    assert node.drops["stream_timeout"] == 1


def test_bounded_work_per_call_and_resume() -> None:
    node = make_node()
    sid = node.stream_accepted(PEER, now=0.0)
    data = encode_stream_message(push_pull(*[state(f"n{i}") for i in range(200)]))
    assert node.stream_data(sid, data, now=0.0, max_work=1024) is True
    assert node.member("n0") is None  # nothing merged before the message is whole
    calls = 1
    while node.stream_data(sid, b"", now=0.0, max_work=1024):
        calls += 1
    assert calls >= len(data) // 1024
    assert node.member("n199") is not None
    assert node.stream_data(sid, b"", now=0.0, max_work=1024) is False  # closed: nothing to do


def test_inbound_streams_share_a_memory_budget() -> None:
    node = make_node(Config.lan(max_inbound_stream_memory=300_000))
    first = node.stream_accepted(PEER, now=0.0)
    second = node.stream_accepted(PEER, now=0.0)
    body = encode_stream_message(push_pull(*[state(f"n{i}") for i in range(1000)]))
    node.stream_data(first, body[:20_000], now=0.0)
    assert node.drops["stream_memory_budget"] == 0
    node.stream_data(second, body[:50_000], now=0.0)  # over budget together: the larger goes
    assert node.drops["stream_memory_budget"] == 1
    out = node.take_outgoing()
    assert StreamClose(second) in out
    assert StreamClose(first) not in out
    node.stream_data(first, body[20_000:], now=0.0)  # the other one still completes
    assert node.member("n999") is not None
