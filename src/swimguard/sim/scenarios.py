"""Ready-made cluster setups shared by the tests, the CLI and the benchmarks."""

from __future__ import annotations

import random
import shlex
import sys
from typing import Any

from swimguard.config import Config
from swimguard.protocol.api import NodeAPI, NodeFactory
from swimguard.protocol.outgoing import Address
from swimguard.sim.cluster import SimCluster
from swimguard.sim.faults import ScenarioSpec
from swimguard.sim.invariants import convergence_gaps
from swimguard.sim.network import LinkModel

__all__ = [
    "join_storm",
    "node_factory",
    "replay_command",
    "run_scenario_spec",
    "start_cluster",
    "warm_cluster",
]


def node_factory(config: Config, **options: Any) -> NodeFactory:
    """A factory building the real `swimguard.protocol.Node` with `config`.

    `options` are passed on to every `Node` it builds (`keyring=`, `label=`, `hooks=`, ...).
    """
    from swimguard.protocol.node import Node  # late: keeps `sim` importable piecewise

    def make(name: str, addr: Address, rng: random.Random, *, now: float) -> NodeAPI:
        node: NodeAPI = Node(config, name=name, advertise=addr, rng=rng, now=now, **options)
        return node

    return make


def replay_command(argv: list[str] | None = None) -> str:
    """The command line that started this process (the replay hint for failures)."""
    args = sys.argv if argv is None else argv
    return " ".join(shlex.quote(a) for a in args)


def start_cluster(
    n: int,
    *,
    seed: int,
    config: Config | None = None,
    factory: NodeFactory | None = None,
    link: LinkModel | None = None,
    join_spread: float | None = None,
    settle: float = 0.0,
    trace: bool = False,
    replay_hint: str = "",
) -> SimCluster:
    """Members m0 .. m{n-1}; m0 starts alone and the others join it over `join_spread` s.

    With `settle` > 0 the cluster then runs until every member sees every other alive (or
    `settle` virtual seconds pass). The join order is by index, so it is seed independent.
    """
    if factory is None:
        factory = node_factory(config if config is not None else Config.lan())
    cluster = SimCluster(factory, seed=seed, link=link, trace=trace, replay_hint=replay_hint)
    cluster.add_member("m0")
    spread = 0.02 * n if join_spread is None else join_spread
    for i in range(1, n):
        cluster.at(spread * i / n, cluster.start_member, f"m{i}", ["m0"])
    cluster.run_until(spread)
    if settle > 0:
        cluster.run_until_true(lambda: not convergence_gaps(cluster), cluster.now + settle, 0.5)
    return cluster


def join_storm(
    n: int,
    *,
    seed: int,
    spread: float,
    config: Config | None = None,
    link: LinkModel | None = None,
    trace: bool = False,
) -> SimCluster:
    """Members m0 .. m{n-1} started in order over `spread` s, each joining ONE random
    earlier member (a mass join: not everyone the same seed). Nothing is run yet.

    The seeds are drawn from their own stream of `seed`, so they do not depend on the
    configuration; `start_cluster` is the other storm, everyone joining m0.
    """
    cluster = SimCluster(
        node_factory(config if config is not None else Config.lan()),
        seed=seed,
        link=link,
        trace=trace,
    )
    rng = random.Random(f"{seed}/join_storm")
    cluster.add_member("m0")
    for i in range(1, n):
        target = f"m{rng.randrange(i)}"
        cluster.at(spread * i / max(1, n - 1), cluster.start_member, f"m{i}", [target])
    return cluster


def warm_cluster(
    n: int,
    *,
    seed: int,
    config: Config | None = None,
    link: LinkModel | None = None,
    trace: bool = False,
    replay_hint: str = "",
) -> SimCluster:
    """Members m0 .. m{n-1} that start knowing each other alive, as after a settled join.

    For cluster sizes whose join storm is too slow or too big to simulate (the storm is
    O(N^2 log N) deliveries and N^2 records): every node is the real `Node`, started alone,
    then `Node.preload`ed with one `SharedView` of all members, so the N tables share records
    until they change one. Each node still gossips its own start-up alive (as after a join).
    """
    from swimguard.protocol.node import Node  # late, as in `node_factory`
    from swimguard.protocol.table import SharedView

    cluster = SimCluster(
        node_factory(config if config is not None else Config.lan()),
        seed=seed,
        link=link,
        trace=trace,
        replay_hint=replay_hint,
    )
    for i in range(n):
        cluster.add_member(f"m{i}")
    nodes = [m.node for m in cluster.members]
    view = SharedView((node.local_member for node in nodes), now=cluster.now)
    for node in nodes:
        assert isinstance(node, Node)
        node.preload(view, now=cluster.now)
    return cluster


def run_scenario_spec(spec: ScenarioSpec, *, seed: int, replay_hint: str = "") -> SimCluster:
    """Build the cluster a scenario file describes and schedule its faults (not run yet)."""
    cluster = start_cluster(
        spec.members,
        seed=seed,
        config=spec.config,
        link=spec.link,
        join_spread=spec.join_spread,
        replay_hint=replay_hint,
    )
    for fault in spec.faults:
        cluster.at(fault.at, fault.apply, cluster, spec.members)
    return cluster
