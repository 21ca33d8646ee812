"""Issue 10, finding 1: a value a peer sends is stored only if it can be encoded again.

One plaintext alive naming `b"\\xff\\xfe"` used to reach the Serf layer's status map;
from then on every push/pull (ours and our replies) raised `UnicodeEncodeError`, so
joins through the agent failed for as long as it ran. Now the message is dropped and
counted, and the node keeps answering push/pulls.
"""

from __future__ import annotations

import msgpack
from serf_harness import SerfNode

from swimguard.protocol.outgoing import StreamSend
from swimguard.serf import Join, Leave, PushPull, SerfLayer, decode_message, encode_message
from swimguard.wire.messages import PushNodeState, PushPullHeader
from swimguard.wire.packet import encode_packet, make_compound
from swimguard.wire.stream import PushPull as MemberPushPull
from swimguard.wire.stream import StreamDecoder, encode_stream_message, frame_stream

IP = b"\x7f\x00\x00\x01"
VSN = bytes((1, 5, 2, 2, 5, 5))


def raw_alive(name: bytes, inc: int = 1, port: int = 7001) -> bytes:
    """An alive message whose Node is the raw bytes `name` (no text encoding on our side)."""
    body = {"Addr": IP, "Incarnation": inc, "Meta": b"", "Node": name, "Port": port, "Vsn": VSN}
    return bytes((4,)) + msgpack.packb(body, use_bin_type=False)


def join_push_pull(name: str = "peer") -> bytes:
    """What a peer sends to join through us: its own state and an empty Serf state."""
    state = PushNodeState(name=name, addr=IP, port=7002, incarnation=1, state=0, vsn=VSN)
    user = SerfLayer(name).local_state(True)
    header = PushPullHeader(nodes=1, user_state_len=len(user), join=True)
    msg = MemberPushPull(header=header, states=(state,), user_state=user)
    return frame_stream(encode_stream_message(msg), compress=False, keyring=None)


def reply_of(sn: SerfNode) -> MemberPushPull:
    """Our push/pull reply to the last inbound stream, decoded."""
    sends = [o for o in sn.out if isinstance(o, StreamSend)]
    assert sends, "no push/pull reply was sent"
    msg = StreamDecoder().feed(sends[-1].data)
    assert isinstance(msg, MemberPushPull)
    return msg


def test_non_utf8_member_name_is_dropped_and_joins_keep_working() -> None:
    sn = SerfNode("a")
    sn.datagram(encode_packet(raw_alive(b"\xff\xfe")), now=1.0)
    # memberlist would keep the name; we cannot hand it to a str encoder again: dropped.
    assert sn.node.drops["not_utf8"] == 1
    assert [m.name for m in sn.node.members()] == ["a"]
    # A join through us still gets a full reply (before the fix: UnicodeEncodeError here).
    sn.stream(join_push_pull(), now=2.0)
    reply = reply_of(sn)
    assert [s.name for s in reply.states] == ["a"]
    serf_state = decode_message(reply.user_state)
    assert isinstance(serf_state, PushPull)
    assert "peer" in sn.node.drops or sn.node.member("peer") is not None


def test_bad_name_in_one_compound_part_spares_the_other_parts() -> None:
    sn = SerfNode("a")
    good = raw_alive(b"b", port=7003)
    sn.datagram(encode_packet(make_compound([raw_alive(b"\xc3\x28"), good])), now=1.0)
    assert sn.node.drops["not_utf8"] == 1
    assert sn.node.member("b") is not None


def test_non_utf8_names_in_serf_messages_are_dropped() -> None:
    layer = SerfLayer("a")
    join = bytes((1,)) + msgpack.packb({"LTime": 3, "Node": b"\xff\xfe"}, use_bin_type=False)
    assert layer.handle_user_message(join) == []
    assert layer.drops["not_utf8"] == 1
    state = bytes((2,)) + msgpack.packb(
        {"LTime": 3, "StatusLTimes": {b"\xff": 1}, "LeftMembers": [], "Events": []},
        use_bin_type=False,
    )
    layer.merge_remote_state(state, join=False)
    assert layer.drops["state_not_utf8"] == 1
    assert isinstance(decode_message(layer.local_state(False)), PushPull)


def test_serf_intent_names_are_checked_like_member_names() -> None:
    layer = SerfLayer("a")
    for name in ("", "x" * 600):
        assert layer.handle_user_message(encode_message(Join(5, name))) == []
        assert layer.handle_user_message(encode_message(Leave(5, name))) == []
    assert layer.drops["name_empty"] == 2
    assert layer.drops["name_too_long"] == 2
    assert layer.status_ltime("") is None
    assert isinstance(decode_message(layer.local_state(False)), PushPull)


def test_status_ltime_at_the_top_of_uint64_stays_encodable() -> None:
    # A left member's status time + 1 used to reach 2**64: msgpack cannot encode it.
    layer = SerfLayer("a")
    top = (1 << 64) - 1
    state = PushPull(ltime=5, status_ltimes={"b": top}, left_members=("b",))
    layer.merge_remote_state(encode_message(state), join=False)
    again = decode_message(layer.local_state(False))
    assert isinstance(again, PushPull)
    assert again.status_ltimes["b"] == top
