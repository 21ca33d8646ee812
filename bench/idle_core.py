"""Idle cost of the protocol core: N Serf members in the simulator, CPU per member-second.

What one idle agent's protocol work costs, without the event loop, the sockets and the
process around it (which `bench.cluster_bench` measures with real processes): N
`SerfNode`s (the agent's node: memberlist core, Serf layer, Vivaldi coordinates) with the
LAN profile settle on the simulator, then run `--virtual` seconds with nothing happening.
CPU time is this process's, so the figure holds up on a loaded machine better than a
wall-clock one; compare two revisions by running each (`PYTHONPATH=REV/src`) in turn.

`--profile N` also prints the N functions with the most own time (cProfile inflates small
calls: read shares, not absolute times).

Run: `python -m bench.idle_core [--members 20] [--virtual 300] [--profile 25]`.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import random
import sys
import time
from collections.abc import Sequence

from swimguard.config import Config
from swimguard.protocol.api import NodeAPI
from swimguard.protocol.members import MemberState
from swimguard.protocol.outgoing import Address
from swimguard.serf.node import SerfNode
from swimguard.sim.cluster import SimCluster
from swimguard.sim.scenarios import start_cluster


def _serf_member(name: str, addr: Address, rng: random.Random, *, now: float) -> NodeAPI:
    node: NodeAPI = SerfNode(  # type: ignore[assignment]  # SerfNode drives like a NodeAPI
        Config.lan(), name=name, advertise=addr, rng=rng, now=now
    )
    return node


def settled_cluster(members: int, seed: int) -> SimCluster:
    """`members` Serf members that all list each other alive, queues drained."""
    cluster = start_cluster(members, seed=seed, factory=_serf_member, settle=40.0)
    cluster.run_for(20.0)  # the join's gossip and first push/pulls are over
    for member in cluster.members:
        alive = [m for m in member.node.members() if m.state is MemberState.ALIVE]
        if len(alive) != members:
            raise RuntimeError(f"{member.name} lists {len(alive)} of {members} members alive")
    return cluster


def measure(members: int, virtual: float, seed: int, profile: int) -> dict[str, float]:
    """CPU per member per virtual second (us) over `virtual` idle seconds."""
    cluster = settled_cluster(members, seed)
    profiler = cProfile.Profile() if profile else None
    start = time.process_time()
    if profiler is not None:
        profiler.enable()
    cluster.run_for(virtual)
    if profiler is not None:
        profiler.disable()
    cpu = time.process_time() - start
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(profile)
        print(out.getvalue())
    per = cpu / virtual / members
    return {"cpu_s": cpu, "us_per_member_second": per * 1e6, "percent_per_member": per * 100}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.idle_core", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=20, help="members (default 20)")
    parser.add_argument("--virtual", type=float, default=300.0,
                        help="idle virtual seconds measured (default 300)")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="print the N functions with the most own time")
    args = parser.parse_args(argv)
    if args.members < 2 or args.virtual <= 0:
        parser.error("--members must be >= 2 and --virtual > 0")
    got = measure(args.members, args.virtual, args.seed, args.profile)
    print(f"idle core: {args.members} members, {args.virtual:g} virtual s: "
          f"{got['cpu_s']:.2f} CPU s, {got['us_per_member_second']:.0f} us per member-second "
          f"({got['percent_per_member']:.4f} % of a core per member)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
