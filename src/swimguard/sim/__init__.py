"""Deterministic simulator driving the real `swimguard.protocol.Node` on virtual time.

One process, one seeded event queue, many nodes: a virtual network (latency distributions,
loss, duplication, one-way links, partitions, a TCP stream model) delivers what the nodes
emit, and faults (crash, restart under the same name, graceful leave, slow members) are
scheduled actions. The same seed and scenario give a byte-identical trace.

    from swimguard.sim import start_cluster, attach_all, check_converged
    cluster = start_cluster(20, seed=7, settle=30)   # m0..m19, LAN config
    attach_all(cluster)                              # invariant checkers
    cluster.crash("m3"); cluster.run_for(30)
    check_converged(cluster)

`warm_cluster(n, seed=...)` starts the members already knowing each other (shared records,
no join storm): the way to simulate thousands of members.

Command line: `swimguard sim lifeguard ...` (the Lifeguard study) and `swimguard sim run FILE`
(the scenario format is documented in `swimguard.sim.faults`).
"""

from __future__ import annotations

from swimguard.sim.cluster import SimCluster as SimCluster
from swimguard.sim.cluster import SimMember as SimMember
from swimguard.sim.distributions import parse_distribution as parse_distribution
from swimguard.sim.invariants import InvariantViolation as InvariantViolation
from swimguard.sim.invariants import attach_all as attach_all
from swimguard.sim.invariants import check_converged as check_converged
from swimguard.sim.invariants import convergence_gaps as convergence_gaps
from swimguard.sim.network import LinkModel as LinkModel
from swimguard.sim.scenarios import start_cluster as start_cluster
from swimguard.sim.scenarios import warm_cluster as warm_cluster
from swimguard.sim.slow import SlowSpec as SlowSpec
from swimguard.sim.slow import parse_slow as parse_slow

__all__ = [
    "InvariantViolation",
    "LinkModel",
    "SimCluster",
    "SimMember",
    "SlowSpec",
    "attach_all",
    "check_converged",
    "convergence_gaps",
    "parse_distribution",
    "parse_slow",
    "start_cluster",
    "warm_cluster",
]
