"""Hostile input never raises out of a Node: random bytes and random well-formed messages."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from node_helpers import IP, add_members, make_node, packet

from swimguard.wire.messages import (
    AckResp,
    Alive,
    Dead,
    IndirectPingReq,
    NackResp,
    Ping,
    PushNodeState,
    PushPullHeader,
    Suspect,
)
from swimguard.wire.packet import UserData
from swimguard.wire.stream import PushPull, encode_stream_message, frame_stream

names = st.sampled_from(["a", "b", "c", "d", "", "\udcff"])
u32 = st.integers(0, 0xFFFF_FFFF)
port = st.integers(0, 0xFFFF)
addr = st.sampled_from([IP, b"", b"\x01\x02", bytes(16), b"\x7f\x00\x00\x02"])
vsn = st.sampled_from([b"", bytes((1, 5, 2, 2, 5, 5)), bytes((0, 0, 0, 0, 0, 0)), b"\x01\x05",
                       bytes((5, 1, 2, 2, 5, 5))])

messages = st.one_of(
    st.builds(Ping, seq_no=u32, node=names, source_addr=addr, source_node=names, source_port=port),
    st.builds(IndirectPingReq, seq_no=u32, target=addr, port=port, node=names, nack=st.booleans(),
              source_addr=addr, source_node=names, source_port=port),
    st.builds(AckResp, seq_no=u32, payload=st.none() | st.binary(max_size=8)),
    st.builds(NackResp, seq_no=u32),
    st.builds(Suspect, incarnation=u32, node=names, from_=names),
    st.builds(Dead, incarnation=u32, node=names, from_=names),
    st.builds(Alive, incarnation=u32, node=names, addr=addr, port=port,
              meta=st.none() | st.binary(max_size=8), vsn=vsn),
    st.builds(UserData, data=st.binary(min_size=1, max_size=8)),
)
states = st.builds(PushNodeState, name=names, addr=addr, port=port, incarnation=u32,
                   state=st.integers(-1, 5), meta=st.none() | st.binary(max_size=4), vsn=vsn)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(messages, min_size=1, max_size=4), min_size=1, max_size=6),
       st.lists(st.floats(0, 100), min_size=1, max_size=3))
def test_random_messages_never_raise(batches: list[list[object]], times: list[float]) -> None:
    node = make_node()
    add_members(node, "b", "c")
    now = 0.0
    for i, batch in enumerate(batches):
        now += times[i % len(times)]
        node.receive_datagram(packet(*batch), ("127.0.0.1", 9), now=now)  # type: ignore[arg-type]
        node.handle_timeout(now=now)
    node.take_outgoing()
    node.take_events()
    assert node.local_member.state.name == "ALIVE"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_raise(data: bytes) -> None:
    node = make_node()
    node.receive_datagram(data, ("127.0.0.1", 9), now=0.0)
    sid = node.stream_accepted(("127.0.0.1", 9), now=0.0)
    node.stream_data(sid, data, now=0.0)
    node.stream_closed(sid, now=0.1)
    node.handle_timeout(now=100.0)


@settings(max_examples=100, deadline=None)
@given(st.lists(states, max_size=6), st.booleans())
def test_random_push_pull_never_raises(sts: list[PushNodeState], join: bool) -> None:
    node = make_node()
    msg = PushPull(PushPullHeader(nodes=len(sts), user_state_len=0, join=join), tuple(sts), b"")
    sid = node.stream_accepted(("127.0.0.1", 9), now=0.0)
    node.stream_data(sid, frame_stream(encode_stream_message(msg), compress=False, keyring=None),
                     now=0.0)
    node.handle_timeout(now=60.0)
    assert node.local_member.state.name == "ALIVE"
