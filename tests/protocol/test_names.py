"""Member names: one rule for our own name (checked at start) and peers' names (dropped)."""

from __future__ import annotations

import random

import pytest
from node_helpers import IP, VSN, A, feed, make_node

from swimguard import Agent
from swimguard.config import META_MAX_SIZE, Config
from swimguard.errors import UsageError
from swimguard.protocol.names import MAX_NAME_BYTES, BadNameError, NameProblem, name_problem
from swimguard.protocol.node import Node
from swimguard.protocol.transmit import (
    COMPOUND_HEADER_OVERHEAD,
    COMPOUND_OVERHEAD,
    ENCRYPT_OVERHEAD,
)
from swimguard.serf import SerfLayer
from swimguard.wire.messages import Alive, Dead, Suspect
from swimguard.wire.packet import encode_message


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("a", None),
        ("x" * MAX_NAME_BYTES, None),
        ("\u00e9" * (MAX_NAME_BYTES // 2), None),
        ("", NameProblem.EMPTY),
        ("x" * (MAX_NAME_BYTES + 1), NameProblem.TOO_LONG),
        ("\u00e9" * (MAX_NAME_BYTES // 2 + 1), NameProblem.TOO_LONG),  # bytes, not characters
        ("\udcff\udcfe", NameProblem.NOT_UTF8),
    ],
)
def test_name_rule(name: str, problem: NameProblem | None) -> None:
    assert name_problem(name) is problem


def test_the_limit_leaves_the_largest_alive_room_in_one_packet() -> None:
    """The derivation in `protocol.names`: checked, not just written down."""
    largest = Alive(incarnation=0xFFFF_FFFF, node="x" * MAX_NAME_BYTES, addr=bytes(16),
                    port=0xFFFF, meta=bytes(META_MAX_SIZE), vsn=VSN)
    budget = (Config.lan().udp_buffer_size - max(ENCRYPT_OVERHEAD.values())
              - COMPOUND_OVERHEAD - COMPOUND_HEADER_OVERHEAD)
    assert len(encode_message(largest)) <= budget


@pytest.mark.parametrize("name", ["", "n" * 70_000, "\udcff"])
def test_our_own_name_is_checked_at_start(name: str) -> None:
    with pytest.raises(BadNameError) as info:
        Node(Config.lan(), name=name, advertise=A, rng=random.Random(1), now=0.0)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, UsageError)
    with pytest.raises(ValueError, match="node name"):
        SerfLayer(name)
    with pytest.raises(ValueError, match="node name"):
        Agent(name, serf_compat=False)  # raises before any socket is bound


def test_a_long_name_says_the_limit() -> None:
    with pytest.raises(BadNameError, match=f"70000 bytes of UTF-8; the limit is {MAX_NAME_BYTES}"):
        Node(Config.lan(), name="n" * 70_000, advertise=A, rng=random.Random(1), now=0.0)


def test_a_name_at_the_limit_can_leave_and_gossip() -> None:
    """The 70,000-character name could start but not leave ("cannot fit in one packet")."""
    name = "n" * MAX_NAME_BYTES
    node = make_node(name=name)
    layer = SerfLayer(name)
    node.broadcast(layer.join_intent(), now=1.0)
    node.broadcast(layer.leave_intent(), now=1.0)  # raised ValueError for the long name
    node.update_meta(bytes(META_MAX_SIZE), now=1.0)
    node.leave(now=1.0, timeout=1.0)
    assert node.has_left


def test_peer_names_follow_the_same_rule() -> None:
    node = make_node()
    feed(node, Alive(incarnation=1, node="b", addr=IP, port=7001, vsn=VSN))
    long = "x" * (MAX_NAME_BYTES + 1)
    feed(node, Alive(incarnation=1, node=long, addr=IP, port=7002, vsn=VSN))
    feed(node, Alive(incarnation=1, node="", addr=IP, port=7003, vsn=VSN))
    feed(node, Suspect(incarnation=1, node="b", from_=long))
    feed(node, Dead(incarnation=1, node="b", from_="\udcff"))
    assert node.drops["name_too_long"] == 2
    assert node.drops["name_empty"] == 1
    assert node.drops["name_not_utf8"] == 1
    assert node.member("b").state.name == "ALIVE"  # type: ignore[union-attr]
    assert sorted(m.name for m in node.members()) == ["a", "b"]
