"""Helpers for driving one Node by hand in tests."""

from __future__ import annotations

import random
from typing import Any

from swimguard.config import Config
from swimguard.protocol.events import Event
from swimguard.protocol.node import Node
from swimguard.protocol.outgoing import Address, Datagram, Outgoing, StreamSend
from swimguard.wire.encryption import Keyring
from swimguard.wire.messages import (
    AckResp,
    Alive,
    Dead,
    Ping,
    PushNodeState,
    PushPullHeader,
    Suspect,
)
from swimguard.wire.packet import (
    Message,
    decode_packet,
    encode_message,
    encode_packet,
    make_compound,
)
from swimguard.wire.stream import (
    PushPull,
    StreamDecoder,
    StreamMessage,
    encode_stream_message,
    frame_stream,
)

A: Address = ("127.0.0.1", 7000)
VSN = bytes((1, 5, 2, 2, 5, 5))
IP = b"\x7f\x00\x00\x01"


def make_node(config: Config | None = None, name: str = "a", now: float = 0.0,
              **kwargs: Any) -> Node:
    node = Node(config or Config.lan(), name=name, advertise=A, rng=random.Random(7), now=now,
                **kwargs)
    node.take_events()
    node.take_outgoing()
    return node


def packet(*msgs: Message) -> bytes:
    parts = [encode_message(m) for m in msgs]
    return encode_packet(parts[0] if len(parts) == 1 else make_compound(parts))


def alive(name: str, inc: int = 1, port: int | None = None, meta: bytes | None = None,
          vsn: bytes = VSN) -> Alive:
    return Alive(incarnation=inc, node=name, addr=IP, port=port or port_of(name), meta=meta,
                 vsn=vsn)


def suspect(name: str, inc: int = 1, frm: str = "x") -> Suspect:
    return Suspect(incarnation=inc, node=name, from_=frm)


def dead(name: str, inc: int = 1, frm: str = "x") -> Dead:
    return Dead(incarnation=inc, node=name, from_=frm)


def port_of(name: str) -> int:
    return 8000 + sum(name.encode())


def addr_of(name: str) -> Address:
    return ("127.0.0.1", port_of(name))


def feed(node: Node, *msgs: Message, now: float = 0.0, sender: Address = ("127.0.0.1", 9)) -> None:
    node.receive_datagram(packet(*msgs), sender, now=now)


def datagrams(out: list[Outgoing]) -> list[tuple[Address, list[Message]]]:
    return [(o.to, decode_packet(o.data)) for o in out if isinstance(o, Datagram)]


def sent_messages(out: list[Outgoing]) -> list[Message]:
    return [m for _, msgs in datagrams(out) for m in msgs]


def add_members(node: Node, *names: str, now: float = 0.0) -> None:
    feed(node, *[alive(n) for n in names], now=now)
    node.take_events()
    node.take_outgoing()


class Run:
    """What a node did while its timers fired, with the time of each output."""

    def __init__(self) -> None:
        self.sent: list[tuple[float, Outgoing]] = []
        self.events: list[tuple[float, Event]] = []
        self.wakeups: list[float] = []  # each time the driver's timer fired
        self.now = 0.0

    def messages(self) -> list[tuple[float, Address, Message]]:
        """Every message sent in a datagram: (time, to, message)."""
        return [
            (t, o.to, m)
            for t, o in self.sent
            if isinstance(o, Datagram)
            for m in decode_packet(o.data)
        ]

    def first(self, kind: type[Any]) -> tuple[float, Any] | None:
        """The first datagram message or event of type `kind`, with its time."""
        found = [(t, m) for t, _, m in self.messages() if isinstance(m, kind)]
        found += [(t, e) for t, e in self.events if isinstance(e, kind)]
        return min(found, key=lambda x: x[0]) if found else None


def run_until(node: Node, t_end: float, *, run: Run | None = None,
              answer_pings: bool = False) -> Run:
    """Fire the node's deadlines in order up to `t_end`, as a driver does after each input.

    Only public outputs are read: `next_deadline()`, `take_outgoing()`, `take_events()`.
    With `answer_pings`, each probe is acked at once (the peers are healthy).
    """
    run = run or Run()
    while (due := node.next_deadline()) is not None and due <= t_end:
        node.handle_timeout(now=due)
        run.wakeups.append(due)
        run.now = due
        out = node.take_outgoing()
        run.sent += [(due, o) for o in out]
        run.events += [(due, e) for e in node.take_events()]
        if answer_pings:
            for ping in sent_messages(out):
                if isinstance(ping, Ping):
                    feed(node, AckResp(seq_no=ping.seq_no), now=due)
            run.sent += [(due, o) for o in node.take_outgoing()]
            run.events += [(due, e) for e in node.take_events()]
    run.now = max(run.now, t_end)
    return run


def framed(msg: StreamMessage, keyring: Keyring | None = None) -> bytes:
    return frame_stream(encode_stream_message(msg), compress=True, keyring=keyring)


def push_pull(*states: PushNodeState, join: bool = True, user: bytes = b"") -> PushPull:
    return PushPull(PushPullHeader(nodes=len(states), user_state_len=len(user), join=join),
                    states, user)


def state(name: str, st: int = 0, inc: int = 1, vsn: bytes = VSN) -> PushNodeState:
    return PushNodeState(name=name, addr=IP, port=addr_of(name)[1], incarnation=inc, state=st,
                         vsn=vsn)


def replies(out: list[Outgoing], sid: int) -> list[StreamMessage]:
    msgs = []
    for o in out:
        if isinstance(o, StreamSend) and o.stream_id == sid:
            m = StreamDecoder().feed(o.data)
            assert m is not None
            msgs.append(m)
    return msgs


def push_pull_in(node: Node, *states: PushNodeState, now: float = 0.0,
                 join: bool = False) -> PushPull:
    """A peer pushes `states` over an inbound stream; the node's reply (its own state)."""
    sid = node.stream_accepted(("127.0.0.1", 5555), now=now)
    node.stream_data(sid, framed(push_pull(*states, join=join)), now=now)
    (reply,) = replies(node.take_outgoing(), sid)
    assert isinstance(reply, PushPull)
    return reply
