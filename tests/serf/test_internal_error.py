"""An internal error while handling input leaves no lasting damage (issue 10).

Peer input is validated before it is kept, so the core and the Serf layer do not raise on
it (see test_hostile_sequences.py). A bug still might: here a rule raises once on purpose.
The exception reaches the driver (the agent logs it and counts "internal_error"); the node
must keep working: its table consistent, later inputs processed, push/pull still encoding,
and no stream left open.
"""

from __future__ import annotations

import pytest
from serf_harness import SerfNode
from test_serf_stored_values import join_push_pull, raw_alive, reply_of

from swimguard.protocol.membership import Membership
from swimguard.protocol.node import Node
from swimguard.protocol.outgoing import StreamClose
from swimguard.protocol.streams import StreamKind
from swimguard.serf import SerfLayer
from swimguard.wire.messages import Suspect
from swimguard.wire.packet import encode_message, encode_packet, make_compound


class Injected(RuntimeError):
    """The bug we plant."""


def raise_once(monkeypatch: pytest.MonkeyPatch, cls: type, name: str) -> list[int]:
    """Make `cls.name` raise `Injected` on its first call only; returns a call counter."""
    original = getattr(cls, name)
    calls = [0]

    def wrapper(self: object, *args: object, **kwargs: object) -> object:
        calls[0] += 1
        if calls[0] == 1:
            raise Injected(name)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cls, name, wrapper)
    return calls


def assert_consistent(node: Node) -> None:
    table = node._table
    assert set(table.by_name) == {r.name for r in table.order}
    assert all(table.by_name[r.name] is r for r in table.order)
    assert all(r in table.order for r in table.by_addr.values())
    assert set(node._membership.suspicions) <= set(table.by_name)
    streams = node._streams
    assert streams.inbound == sum(1 for s in streams.by_id.values() if s.kind is StreamKind.INBOUND)
    assert node.local_member.state.name == "ALIVE"


def test_a_rule_that_raises_once_leaves_the_node_working(monkeypatch: pytest.MonkeyPatch) -> None:
    sn = SerfNode("a")
    sn.datagram(encode_packet(raw_alive(b"b", port=7001)), now=1.0)
    calls = raise_once(monkeypatch, Membership, "suspect_node")
    accuse = encode_message(Suspect(incarnation=1, node="b", from_="c"))
    with pytest.raises(Injected):  # the agent's `_guarded` catches and counts this one
        sn.datagram(encode_packet(make_compound([accuse, raw_alive(b"c", port=7002)])), now=2.0)
    assert_consistent(sn.node)
    # Later input is processed, the same message included.
    sn.datagram(encode_packet(make_compound([accuse, raw_alive(b"c", port=7002)])), now=3.0)
    assert calls[0] == 2
    assert sn.node.member("b").state.name == "SUSPECT"  # type: ignore[union-attr]
    assert sn.node.member("c") is not None
    sn.stream(join_push_pull(), now=4.0)
    assert {s.name for s in reply_of(sn).states} == {"a", "b", "c"}
    assert_consistent(sn.node)
    # The suspicion still runs its course.
    sn.timeout(now=1000.0)
    assert sn.node.member("b").state.name == "DEAD"  # type: ignore[union-attr]
    assert_consistent(sn.node)


def test_a_state_hook_that_raises_once_closes_the_stream_and_joins_go_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sn = SerfNode("a")
    first, second = join_push_pull("p1"), join_push_pull("p2")
    raise_once(monkeypatch, SerfLayer, "local_state")
    with pytest.raises(Injected):
        sn.stream(first, now=1.0)
    sn.pump()
    # The connection is closed (not held open by the driver until the peer gives up).
    assert isinstance(sn.out[-1], StreamClose)
    assert_consistent(sn.node)
    sn.stream(second, now=2.0)
    assert [s.name for s in reply_of(sn).states] == ["a"]  # memberlist replies, then merges
    assert sn.node.member("p2") is not None
    assert_consistent(sn.node)
