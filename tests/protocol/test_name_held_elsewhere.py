"""`NameHeldElsewhere`: a peer's push/pull holds our name at another address."""

from __future__ import annotations

import dataclasses

import pytest
from node_helpers import A, make_node, push_pull_in, state

from swimguard.config import Config
from swimguard.protocol import MemberState, NameHeldElsewhere
from swimguard.wire.messages import NodeState


def held(node_events: list[object]) -> list[NameHeldElsewhere]:
    return [e for e in node_events if isinstance(e, NameHeldElsewhere)]


@pytest.mark.parametrize(
    ("remote", "expected"),
    [(NodeState.SUSPECT, MemberState.SUSPECT), (NodeState.DEAD, MemberState.DEAD)],
)
def test_our_name_at_another_port_suspect_or_dead_is_reported(
    remote: NodeState, expected: MemberState
) -> None:
    node = make_node()  # "a" at A
    other = dataclasses.replace(state("a", int(remote), inc=3), port=1)
    push_pull_in(node, other, join=True)
    (event,) = held(node.take_events())
    assert event == NameHeldElsewhere(("127.0.0.1", 1), expected, 3)


@pytest.mark.parametrize("remote", [NodeState.ALIVE, NodeState.LEFT])
def test_alive_and_left_records_are_not_this_event(remote: NodeState) -> None:
    node = make_node()
    other = dataclasses.replace(state("a", int(remote), inc=3), port=1)
    push_pull_in(node, other)
    assert held(node.take_events()) == []


def test_our_own_address_or_a_set_reclaim_time_is_not_reported() -> None:
    node = make_node()
    ours = dataclasses.replace(state("a", int(NodeState.DEAD), inc=3), port=A[1])
    push_pull_in(node, ours)  # our own address: refuted, no conflict
    assert held(node.take_events()) == []
    reclaiming = make_node(Config.lan(dead_node_reclaim_time=10.0))
    other = dataclasses.replace(state("a", int(NodeState.DEAD), inc=3), port=1)
    push_pull_in(reclaiming, other)
    assert held(reclaiming.take_events()) == []
