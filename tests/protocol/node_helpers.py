"""Helpers for driving one Node by hand in tests."""

from __future__ import annotations

import random
from typing import Any

from swimguard.config import Config
from swimguard.protocol.node import Node
from swimguard.protocol.outgoing import Address, Datagram, Outgoing
from swimguard.wire.messages import Alive, Dead, Suspect
from swimguard.wire.packet import (
    Message,
    decode_packet,
    encode_message,
    encode_packet,
    make_compound,
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
