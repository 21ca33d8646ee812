"""`SerfNode` on its own: one pure node, driven with a fake clock, no driver involved."""

from __future__ import annotations

import random

import msgpack

from swimguard.config import Config
from swimguard.protocol.events import JoinCompleted, LeaveCompleted, MemberJoined, UserMessage
from swimguard.protocol.outgoing import Address, Datagram, StreamOpen, StreamSend
from swimguard.serf import JoinIntentReceived, SerfLayer, UserEventReceived
from swimguard.serf.messages import Join as SerfJoin
from swimguard.serf.messages import encode_message as serf_encode
from swimguard.serf.node import SerfNode, leave_intent_wait
from swimguard.wire.packet import UserData, encode_message, encode_packet

HERE: Address = ("127.0.0.1", 7000)
PEER: Address = ("127.0.0.1", 7001)


def serf_node(name: str = "a", *, hooks: object | None = None) -> SerfNode:
    return SerfNode(
        Config.lan(), name=name, advertise=HERE, rng=random.Random(1), now=0.0, hooks=hooks
    )


def user_packet(data: bytes) -> bytes:
    return encode_packet(encode_message(UserData(data)))


def test_a_serf_message_comes_out_as_a_serf_event_and_is_regossiped_in_the_same_input() -> None:
    sn = serf_node()
    assert [type(e) for e in sn.take_events()] == [MemberJoined]
    sn.receive_datagram(alive_of_b(), PEER, now=0.5)
    sn.take_events()
    event = SerfLayer("c").user_event("deploy", b"v1")
    sn.receive_datagram(user_packet(event), PEER, now=1.0)
    assert sn.take_events() == [UserEventReceived("deploy", b"v1", 1, True)]
    # The re-gossip is already in the node's queues: the next gossip round carries it.
    sn.take_outgoing()
    sn.handle_timeout(now=1.0 + Config.lan().gossip_interval)
    sent = b"".join(o.data for o in sn.take_outgoing() if isinstance(o, Datagram))
    assert event in sent
    # Seen again: deduplicated, nothing new to report.
    sn.receive_datagram(user_packet(event), PEER, now=2.0)
    assert sn.take_events() == []


def alive_of_b() -> bytes:
    body = {"Addr": bytes((127, 0, 0, 1)), "Incarnation": 1, "Meta": b"", "Node": "b",
            "Port": PEER[1], "Vsn": bytes((1, 5, 2, 2, 5, 4))}
    return encode_packet(bytes((4,)) + msgpack.packb(body, use_bin_type=False))


def test_other_user_messages_pass_through() -> None:
    sn = serf_node()
    sn.take_events()
    sn.receive_datagram(user_packet(b"hello"), PEER, now=1.0)
    assert sn.take_events() == [UserMessage(b"hello")]


def test_leave_gossips_the_intent_first_and_starts_the_memberlist_leave_at_a_deadline() -> None:
    sn = serf_node()
    sn.take_events()
    config = Config.lan()
    wait = leave_intent_wait(config, 4.0)
    assert wait == min(2.0, max(3 * config.gossip_interval, 0.1))
    sn.leave(4.0, now=10.0)
    assert sn.serf.leaving
    deadline = sn.next_deadline()
    assert deadline is not None
    assert deadline <= 10.0 + wait
    assert not sn.node.has_left  # type: ignore[attr-defined]
    sn.handle_timeout(now=10.0 + wait / 2)  # early: the leave still waits
    assert not sn.node.has_left  # type: ignore[attr-defined]
    sn.handle_timeout(now=10.0 + wait)
    assert sn.node.has_left  # type: ignore[attr-defined]
    # Alone, the memberlist leave completes at once.
    assert LeaveCompleted(timed_out=False) in sn.take_events()


def test_only_messages_framed_as_serf_frames_them_are_serf_s() -> None:
    sn = serf_node()
    sn.take_events()
    # A Serf type byte followed by something that is not that Serf message: the user's.
    for data in (b"\x05\xc1", msgpack.packb(5), b"\x03" + msgpack.packb([1, 2]), b"\x02{}",
                 b"\x07" + msgpack.packb({"Key": b"k"}), b"\x00", b"\x09\x00"):
        sn.receive_datagram(user_packet(data), PEER, now=1.0)
        assert sn.take_events() == [UserMessage(data)], data
    assert not sn.drops
    # A Serf-framed join intent is Serf's; one with a name Serf would refuse is dropped
    # and counted with the layer's prefix.
    sn.receive_datagram(user_packet(serf_encode(SerfJoin(5, "b"))), PEER, now=1.0)
    assert sn.take_events() == [JoinIntentReceived("b", 5)]
    sn.receive_datagram(user_packet(serf_encode(SerfJoin(6, ""))), PEER, now=1.0)
    assert sn.take_events() == []
    assert len(sn.drops) == 1
    assert next(iter(sn.drops)).startswith("serf_")


def test_an_application_that_brings_its_own_state_keeps_push_pull_to_itself() -> None:
    class State:
        def __init__(self) -> None:
            self.merged: list[bytes] = []

        def local_state(self, join: bool) -> bytes:
            return b"mine"

        def merge_remote_state(self, data: bytes, join: bool) -> None:
            self.merged.append(data)

    app = State()
    a = serf_node(hooks=app)
    b = serf_node("b")
    a.join([PEER], now=1.0)
    out = a.take_outgoing()
    request = b"".join(o.data for o in out if isinstance(o, StreamSend))
    sid = b.stream_accepted(HERE, now=1.0)
    b.stream_data(sid, request, now=1.0)
    reply = b"".join(o.data for o in b.take_outgoing() if isinstance(o, StreamSend))
    a_sid = next(o.stream_id for o in out if isinstance(o, StreamOpen))
    a.stream_data(a_sid, reply, now=1.1)
    # b (Serf's state) refused a's application state as not Serf's; a's application got
    # b's Serf state (type 0x02) and the Serf layer of a saw none of it.
    assert b.drops["serf_state_type"] == 1
    assert [m[0] for m in app.merged] == [2]
    assert JoinCompleted(joined=1, errors=()) in a.take_events()

