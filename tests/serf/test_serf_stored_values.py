"""Issue 10, finding 1: a value a peer sends is stored only if it can be encoded again.

One plaintext alive naming `b"\\xff\\xfe"` used to reach the Serf layer's status map;
from then on every push/pull (ours and our replies) raised `UnicodeEncodeError`, so
joins through the agent failed for as long as it ran. Now the message is dropped and
counted, and the node keeps answering push/pulls.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import msgpack
import pytest
from serf_harness import SerfNode

from swimguard import Agent
from swimguard.config import Config
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
    assert sn.node.drops["name_not_utf8"] == 1
    assert [m.name for m in sn.node.members()] == ["a"]
    # A join through us still gets a full reply (before the fix: UnicodeEncodeError here).
    sn.stream(join_push_pull(), now=2.0)
    reply = reply_of(sn)
    assert [s.name for s in reply.states] == ["a"]
    serf_state = decode_message(reply.user_state)
    assert isinstance(serf_state, PushPull)
    assert sn.node.member("peer") is not None


def test_bad_name_in_one_compound_part_spares_the_other_parts() -> None:
    sn = SerfNode("a")
    good = raw_alive(b"b", port=7003)
    sn.datagram(encode_packet(make_compound([raw_alive(b"\xc3\x28"), good])), now=1.0)
    assert sn.node.drops["name_not_utf8"] == 1
    assert sn.node.member("b") is not None


def test_non_utf8_names_in_serf_messages_are_dropped() -> None:
    layer = SerfLayer("a")
    join = bytes((1,)) + msgpack.packb({"LTime": 3, "Node": b"\xff\xfe"}, use_bin_type=False)
    assert layer.handle_user_message(join) == []
    assert layer.drops["name_not_utf8"] == 1
    event = bytes((3,)) + msgpack.packb({"LTime": 3, "Name": b"\xff"}, use_bin_type=False)
    assert layer.handle_user_message(event) == []
    assert layer.drops["event_name_not_utf8"] == 1
    state = bytes((2,)) + msgpack.packb(
        {
            "LTime": 3,
            "StatusLTimes": {b"\xff": 1, b"ok": 2},
            "LeftMembers": [b"\xfe"],
            "Events": [{"LTime": 1, "Events": [{"Name": b"\xfd"}, {"Name": b"fine"}]}],
        },
        use_bin_type=False,
    )
    layer.merge_remote_state(state, join=False)
    # Entry by entry: the good ones are kept.
    assert layer.drops["state_name_not_utf8"] == 2
    assert layer.drops["state_event_name_not_utf8"] == 1
    assert layer.status_ltime("ok") == 2
    assert [e.name for e in layer.take_events()] == ["fine"]  # type: ignore[attr-defined]
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


def test_one_bad_state_in_a_push_pull_spares_the_others() -> None:
    """A Go peer keeps any bytes as a name; its push/pull must still merge."""
    bad = PushNodeState(name="\udcff", addr=IP, port=7004, incarnation=1, state=0, vsn=VSN)
    good = PushNodeState(name="c", addr=IP, port=7005, incarnation=1, state=0, vsn=VSN)
    header = PushPullHeader(nodes=2, user_state_len=0, join=True)
    msg = MemberPushPull(header=header, states=(bad, good), user_state=b"")
    sn = SerfNode("a")
    sn.stream(frame_stream(encode_stream_message(msg), compress=False, keyring=None), now=1.0)
    assert sn.node.drops["name_not_utf8"] == 1
    assert sn.node.member("c") is not None
    assert sorted(s.name for s in reply_of(sn).states) == ["a"]


def test_oversized_meta_is_dropped() -> None:
    sn = SerfNode("a")
    body = {"Addr": IP, "Incarnation": 1, "Meta": bytes(513), "Node": b"m", "Port": 7006,
            "Vsn": VSN}
    sn.datagram(encode_packet(bytes((4,)) + msgpack.packb(body, use_bin_type=False)), now=1.0)
    assert sn.node.drops["meta_too_large"] == 1
    assert sn.node.member("m") is None


def test_status_names_are_bounded_in_bytes() -> None:
    from swimguard.serf.layer import MAX_NAME_TABLE_BYTES

    layer = SerfLayer("a")
    n = MAX_NAME_TABLE_BYTES // 500 + 50
    for i in range(n):
        layer.handle_user_message(encode_message(Join(i + 1, f"{i:08d}" + "x" * 480)))
        layer.note_member(f"{i:08d}" + "y" * 480, "left")
    state = layer.local_state(False)
    assert len(state) < 2 * MAX_NAME_TABLE_BYTES + 100_000
    assert layer.status_ltime("a") == 0  # never forgets itself
    assert isinstance(decode_message(state), PushPull)


async def _until(predicate: Callable[[], object]) -> None:
    while True:  # the test's own timeout bounds the wait
        if predicate():
            return
        await asyncio.sleep(0.02)


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_live_agent_drops_the_poison_packet_and_still_takes_joins() -> None:
    """The finding as reported: one plaintext UDP packet, then a join through the agent."""

    async def body() -> None:
        config = Config.local()
        async with Agent("a", bind=("127.0.0.1", 0), config=config) as a:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.sendto(encode_packet(raw_alive(b"\xff\xfe")), a.bound_address)
                await _until(lambda: a.drops.get("name_not_utf8") or len(a.members()) > 1)
                assert a.drops["name_not_utf8"] == 1
                async with Agent("b", bind=("127.0.0.1", 0), config=config) as b:
                    assert await b.join([a.bound_address]) == 1  # JoinError before the fix
                    await _until(lambda: {m.name for m in a.members()} == {"a", "b"})
                # A Serf user event too large for us to gossip again (a peer with a bigger
                # UDP buffer may send one): counted, not raised while draining.
                event = bytes((3,)) + msgpack.packb(
                    {"LTime": 1, "Name": b"big", "Payload": bytes(1500)}, use_bin_type=False)
                s.sendto(encode_packet(bytes((8,)) + event), a.bound_address)
                await _until(lambda: {"serf_regossip_too_large", "internal_error"} & set(a.drops))
            assert "internal_error" not in a.drops
            assert a.drops["serf_regossip_too_large"] == 1

    asyncio.run(body())
