"""Warm start: nodes preloaded from one SharedView share records until they change one.

The sharing itself (which record objects two tables hold) is what these tests check, and no
output shows object identity, so they read `Node._table`; states go through `members()`.
"""

from __future__ import annotations

import random

import pytest
from node_helpers import addr_of, alive, dead, feed, run_until, suspect

from swimguard.config import Config
from swimguard.errors import UsageError
from swimguard.protocol import MemberState
from swimguard.protocol.node import Node
from swimguard.protocol.outgoing import StreamOpen
from swimguard.protocol.table import SharedView
from swimguard.wire.messages import Ping

NAMES = ("a", "b", "c", "d", "e", "f")


def _nodes(names: tuple[str, ...] = NAMES) -> tuple[dict[str, Node], SharedView]:
    nodes = {
        n: Node(Config.lan(), name=n, advertise=addr_of(n), rng=random.Random(n), now=0.0)
        for n in names
    }
    view = SharedView((node.local_member for node in nodes.values()), now=0.0)
    for node in nodes.values():
        node.take_events()
        node.take_outgoing()
        node.preload(view, now=0.0)
    return nodes, view


def _state(node: Node, name: str) -> MemberState:
    member = node.member(name)
    assert member is not None
    return member.state


def test_preload_knows_everyone_alive_without_events_and_shares_records() -> None:
    nodes, view = _nodes()
    a, b = nodes["a"], nodes["b"]
    assert a.num_members == len(NAMES)
    assert {m.name: m.state for m in a.members()} == dict.fromkeys(NAMES, MemberState.ALIVE)
    assert a.take_events() == []
    assert a._table.get("c") is b._table.get("c") is view.by_name["c"]
    # Our own record is private: refuting must never touch the other tables.
    assert a._table.get("a") is not view.by_name["a"]
    assert a._table.by_addr[addr_of("c")] is view.by_name["c"]
    # Each node probes in its own random order (its first round, as its pings show).
    orders = set()
    for name, node in nodes.items():
        run = run_until(node, 10.0, answer_pings=True)
        pinged = [m.node for _, _, m in run.messages() if isinstance(m, Ping)][: len(NAMES) - 1]
        assert sorted(pinged) == sorted(set(NAMES) - {name})
        orders.add(tuple(pinged))
    assert len(orders) > 1


def test_a_change_copies_the_record_into_that_table_only() -> None:
    nodes, view = _nodes()
    a, b, c = nodes["a"], nodes["b"], nodes["c"]
    feed(a, suspect("d", 1, frm="b"), now=1.0)
    assert _state(a, "d") is MemberState.SUSPECT
    assert _state(b, "d") is MemberState.ALIVE
    copy = a._table.get("d")
    assert copy is not view.by_name["d"]
    assert not copy.shared
    assert a._table.by_addr[addr_of("d")] is copy
    assert sum(r is copy for r in a._table.order) == 1
    assert all(r is not view.by_name["d"] for r in a._table.order)

    feed(b, dead("e", 1, frm="c"), now=1.0)
    feed(c, alive("f", 2, meta=b"new"), now=1.0)
    assert _state(b, "e") is MemberState.DEAD
    assert _state(a, "e") is MemberState.ALIVE
    f_at_c, f_at_a = c.member("f"), a.member("f")
    assert f_at_c is not None
    assert f_at_a is not None
    assert (f_at_c.incarnation, f_at_c.meta) == (2, b"new")
    assert (f_at_a.incarnation, f_at_a.meta) == (1, b"")
    for rec in view.records:  # the shared records never change
        assert rec.shared
        assert rec.state is MemberState.ALIVE
        assert rec.incarnation == 1


def test_refuting_a_suspicion_leaves_the_shared_copy_of_ourselves_alone() -> None:
    nodes, view = _nodes()
    a = nodes["a"]
    feed(a, suspect("a", 1, frm="b"), now=1.0)
    me = a.member("a")
    assert me is not None
    assert me.incarnation == 2
    assert view.by_name["a"].incarnation == 1
    b_view_of_a = nodes["b"].member("a")
    assert b_view_of_a is not None
    assert b_view_of_a.incarnation == 1


def test_preload_needs_a_fresh_node() -> None:
    nodes, view = _nodes(("a", "b"))
    with pytest.raises(UsageError, match="fresh node"):
        nodes["a"].preload(view, now=0.0)
    other = Node(Config.lan(), name="x", advertise=addr_of("x"), rng=random.Random(1), now=0.0)
    feed(other, alive("b"))
    with pytest.raises(UsageError, match="fresh node"):
        other.preload(view, now=0.0)
    moved = Node(Config.lan(), name="a", advertise=("127.0.0.1", 1), rng=random.Random(1), now=0)
    with pytest.raises(UsageError, match=r"the view has .a. at"):
        moved.preload(view, now=0.0)


def test_a_view_needs_unique_names() -> None:
    nodes, _ = _nodes(("a", "b"))
    me = nodes["a"].local_member
    with pytest.raises(ValueError, match="unique"):
        SharedView([me, me], now=0.0)


def test_preload_redraws_the_push_pull_phase_in_the_scaled_interval() -> None:
    names = tuple(f"n{i}" for i in range(40))  # 40 members: pushPullScale doubles 30 s to 60 s
    nodes, _ = _nodes(names)
    due = []
    for node in nodes.values():
        run = run_until(node, 60.0, answer_pings=True)
        opened = [t for t, o in run.sent if isinstance(o, StreamOpen)]  # push/pulls only
        due.append(opened[0])
    assert all(0.0 <= d < 60.0 for d in due)
    assert max(due) > 30.0
