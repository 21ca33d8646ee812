"""A member is stored only with a Vsn every stored member accepts (issue 10: one
forged alive with delegate version 144 made every later join through the agent fail)."""

from __future__ import annotations

import random

from node_helpers import VSN, alive, make_node, packet, push_pull_in

from swimguard.config import Config
from swimguard.protocol.members import Member, MemberState
from swimguard.protocol.node import Node
from swimguard.protocol.table import MemberRecord, MemberTable, SharedView
from swimguard.protocol.versions import verify_protocol, vsns_agree
from swimguard.wire.messages import Alive


def _join_reply_verifies(node: Node) -> str | None:
    """What a fresh member with our versions says of the push/pull we would send it."""
    pp = push_pull_in(node, join=True)
    return verify_protocol([(VSN, True)], pp.states)


def _feed(node: Node, *msgs: Alive) -> None:
    node.receive_datagram(packet(*msgs), ("127.0.0.1", 9), now=0.0)


def test_a_forged_delegate_version_is_dropped_and_joins_still_verify() -> None:
    node = make_node()
    _feed(node, alive("pose", vsn=bytes((1, 5, 2, 2, 5, 144))))
    assert node.member("pose") is None
    assert node.drops["vsn_incompatible"] == 1
    assert _join_reply_verifies(node) is None


def test_a_new_member_without_vsn_is_dropped_a_known_one_keeps_its_vsn() -> None:
    node = make_node()
    _feed(node, alive("b"))
    _feed(node, alive("c", vsn=b""))
    assert node.member("c") is None
    assert node.drops["vsn_incompatible"] == 1
    _feed(node, alive("b", inc=2, vsn=b""))
    b = node.member("b")
    assert b is not None
    assert b.incarnation == 2
    assert b.vsn == VSN
    assert _join_reply_verifies(node) is None


def test_two_members_that_each_agree_with_us_but_not_with_each_other() -> None:
    node = make_node()
    narrow, high = bytes((1, 2, 2, 2, 5, 5)), bytes((2, 5, 5, 2, 5, 5))
    assert vsns_agree(narrow, VSN)
    assert vsns_agree(high, VSN)
    assert not vsns_agree(narrow, high)
    _feed(node, alive("b", vsn=narrow), alive("c", vsn=high))
    assert node.member("b") is not None
    assert node.member("c") is None
    assert node.drops["vsn_incompatible"] == 1
    assert _join_reply_verifies(node) is None


def test_a_known_member_may_not_change_to_an_incompatible_vsn() -> None:
    node = make_node()
    _feed(node, alive("b"))
    _feed(node, alive("b", inc=2, vsn=bytes((1, 5, 9, 2, 5, 5))))
    b = node.member("b")
    assert b is not None
    assert b.incarnation == 1
    assert b.vsn == VSN
    assert node.drops["vsn_incompatible"] == 1


def test_the_table_counts_vsns_through_every_writer() -> None:
    rng = random.Random(1)
    table = MemberTable()
    other = bytes((1, 4, 2, 2, 5, 5))
    own = MemberRecord("a", "127.0.0.1", b"\x7f\0\0\1", 1, b"")
    own.vsn = VSN
    own.state = MemberState.ALIVE
    table.add(own, rng)
    b = table.add_new("b", "127.0.0.1", b"\x7f\0\0\1", 2, b"", other, rng)
    assert table.vsns == {VSN: 1, other: 1}
    b = table.set_alive(b, incarnation=1, meta=b"", vsn=VSN, host="127.0.0.1",
                        addr_bytes=b"\x7f\0\0\1", port=2, now=0.0)
    assert table.vsns == {VSN: 2}
    table.set_state(b, MemberState.DEAD, 1, now=0.0)
    assert table.reset(rng, dead_time=10.0, reap_left=False, now=100.0) == [b]
    assert table.vsns == {VSN: 1}
    view = SharedView([Member(n, ("127.0.0.1", i), 1, MemberState.ALIVE, b"", other)
                       for i, n in enumerate("axyz")], now=0.0)
    fresh = MemberTable()
    fresh.add(own, rng)
    fresh.adopt(view, own, rng)
    assert fresh.vsns == {other: 3, VSN: 1}


def test_the_table_holds_at_most_max_members() -> None:
    node = make_node(Config.lan(max_members=3))
    _feed(node, *(alive(n) for n in "bcde"))
    assert sorted(m.name for m in node.members()) == ["a", "b", "c"]
    assert node.drops["table_full"] == 2
    _feed(node, alive("b", inc=2))  # news about a known member still counts
    assert node.member("b").incarnation == 2  # type: ignore[union-attr]
