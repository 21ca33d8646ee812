"""Protocol tests on the simulator: Nodes in a `swimguard.sim.SimCluster`, events by member.

The simulator is the one driver of simulated clusters (tests, CLI, benchmarks); these helpers
only name things the way the protocol tests read them.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from swimguard.config import Config
from swimguard.protocol.events import Event
from swimguard.protocol.node import Node
from swimguard.sim import LinkModel, SimCluster, SimMember
from swimguard.sim.scenarios import node_factory

# A link that loses every datagram; streams (TCP) still get through.
UDP_LOST = LinkModel(loss=1.0)


class EventsByMember:
    """A cluster listener keeping every published event, by member name; call it with a name."""

    def __init__(self) -> None:
        self._events: defaultdict[str, list[Event]] = defaultdict(list)

    def on_events(self, now: float, member: SimMember, events: list[Event], cause: str) -> None:
        self._events[member.name].extend(events)

    def __call__(self, name: str) -> list[Event]:
        return self._events[name]


def node_cluster(
    config: Config | None = None, *, seed: int = 1
) -> tuple[SimCluster, EventsByMember]:
    """An empty cluster of real Nodes (`config`, LAN by default) and its event record."""
    cluster = SimCluster(node_factory(config or Config.lan()), seed=seed)
    events = EventsByMember()
    cluster.add_listener(events)
    return cluster, events


def add(cluster: SimCluster, name: str, config: Config | None = None, **options: Any) -> Node:
    """Start member `name`, built like the cluster's nodes unless it has settings of its own:
    a `config` and/or Node `options` (keyring, label, hooks; with options but no config the
    member gets `Config.lan()`)."""
    factory = node_factory(config or Config.lan(), **options) if config or options else None
    node = cluster.add_member(name, factory=factory).node
    assert isinstance(node, Node)
    return node


def node(cluster: SimCluster, name: str) -> Node:
    n = cluster.node(name)
    assert isinstance(n, Node)
    return n


def join(cluster: SimCluster, name: str, *seeds: str) -> None:
    """`name` joins the members `seeds` now (push/pull with each)."""
    addrs = [cluster.member(s).addr for s in seeds]
    cluster.call(name, lambda n, now: n.join(addrs, now=now))


def join_all(cluster: SimCluster) -> None:
    """Every member but the first joins the first."""
    first, *rest = cluster.members
    for m in rest:
        join(cluster, m.name, first.name)


def lose_udp(cluster: SimCluster, src: str, dst: str, lost: bool = True) -> None:
    """Lose every datagram from `src` to `dst` (one way) through the link model, or stop."""
    a, b = cluster.member(src).index, cluster.member(dst).index
    if lost:
        cluster.network.set_link(a, b, UDP_LOST)
    else:
        cluster.network.clear_link(a, b)


def names_of(node: Any, *states: str) -> set[str]:
    """Names of members of `node` in the given states (by MemberState name)."""
    return {m.name for m in node.members() if m.state.name in states}
