"""Simulator scale and convergence benchmark: `python -m bench.sim_scale [--sizes 1000,10000]`.

For each cluster size N (members m0..m{N-1}, memberlist LAN config, the real core):

1. bootstrap: members join m0 over 0.02*N virtual seconds, then run until every member sees
   every other alive and every join broadcast has run out of retransmits (capped by
   --settle-cap); wall and virtual time are reported. memberlist re-gossips every alive
   message it learns, so this phase costs O(N^2 log N) message deliveries;
2. steady state: --virtual seconds (default 60) with nothing happening; wall time reported
   (the target is N=1,000 for 60 virtual seconds in under 5 minutes on one core);
3. convergence: an *alive* update (m1 changes its metadata, a new incarnation) and a *dead*
   update (m2 crashes): time until 99 % / 99.9 % / 100 % of the other members have the
   event, counted from the update (alive) or from the first declaration anywhere (dead),
   next to the Serf convergence model (research note §5).

Optionally `--profile` prints the top functions (cProfile) of the steady-state phase.
Results go to stdout as a table and, with --out DIR, to DIR/sim_scale.json and .md.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import pstats
import sys
import time
from pathlib import Path

from swimguard.config import Config
from swimguard.protocol.events import Event, MemberFailed, MemberUpdated
from swimguard.sim.cluster import SimCluster, SimMember
from swimguard.sim.invariants import convergence_gaps
from swimguard.sim.scenarios import start_cluster

# Serf simulator model (research note §5), LAN 3 nodes / 0.2 s, 0 % loss: seconds to reach
# 99 % / 99.9 % / 99.99 % of nodes.
SERF_MODEL = {
    30: (1.2, 1.4, 1.8),
    100: (1.4, 1.6, 2.0),
    1000: (1.6, 2.0, 2.2),
    10000: (2.0, 2.2, 2.6),
}


class Spread:
    """Times at which each member first published an event of `kind` about `subject`."""

    def __init__(self, kind: type, subject: str) -> None:
        self.kind = kind
        self.subject = subject
        self.seen: dict[str, float] = {}

    def on_events(self, now: float, member: SimMember, events: list[Event], cause: str) -> None:
        for event in events:
            subject = getattr(event, "member", None)
            if (
                type(event) is self.kind
                and member.name != self.subject
                and subject is not None
                and subject.name == self.subject
            ):
                self.seen.setdefault(member.name, now)

    def quantiles(self, start: float, population: int) -> dict[str, float | None]:
        times = sorted(t - start for t in self.seen.values())
        out: dict[str, float | None] = {"reached": len(times) / population}
        for q in (0.99, 0.999, 1.0):
            need = math.ceil(q * population)
            out[f"t{q * 100:g}"] = round(times[need - 1], 3) if len(times) >= need else None
        return out


def _quiet(cluster: SimCluster) -> bool:
    """Everyone sees everyone alive and no join broadcast is left to retransmit."""
    if any(m.node.broadcasts_queued for m in cluster.live()):  # type: ignore[attr-defined]
        return False
    return not convergence_gaps(cluster)


def _settle(cluster: SimCluster, cap: float) -> bool:
    """Run until `_quiet` or `cap` virtual seconds; checks every 2 s (a full scan is O(N^2))."""
    return cluster.run_until_true(lambda: _quiet(cluster), cluster.now + cap, 2.0)


def measure(
    n: int, virtual: float, settle_cap: float, seed: int, profile: bool
) -> dict[str, object]:
    """Bootstrap, steady state and convergence for one size."""
    config = Config.lan(enable_compression=False)
    row: dict[str, object] = {"members": n, "virtual_s": virtual}
    wall = time.perf_counter()
    cpu = time.process_time()
    cluster = start_cluster(n, seed=seed, config=config)
    converged = _settle(cluster, settle_cap)
    row["bootstrap_cpu_s"] = round(time.process_time() - cpu, 2)
    row["bootstrap_virtual_s"] = round(cluster.now, 2)
    row["bootstrap_wall_s"] = round(time.perf_counter() - wall, 2)
    row["bootstrap_converged"] = converged
    row["bootstrap_events"] = cluster.steps
    row["bootstrap_gaps"] = 0 if converged else len(convergence_gaps(cluster))

    steps0 = cluster.steps
    wall = time.perf_counter()
    cpu = time.process_time()
    profiler = cProfile.Profile() if profile else None
    if profiler is not None:
        profiler.enable()
    cluster.run_for(virtual)
    if profiler is not None:
        profiler.disable()
    steady = time.perf_counter() - wall
    row["steady_cpu_s"] = round(time.process_time() - cpu, 2)
    row["steady_wall_s"] = round(steady, 2)
    row["steady_events"] = cluster.steps - steps0
    row["events_per_wall_s"] = round((cluster.steps - steps0) / steady) if steady else None
    if profiler is not None:
        buf = io.StringIO()
        pstats.Stats(profiler, stream=buf).sort_stats("tottime").print_stats(20)
        row["profile"] = buf.getvalue()

    alive = Spread(MemberUpdated, "m1")
    dead = Spread(MemberFailed, "m2")
    cluster.add_listener(alive)
    cluster.add_listener(dead)
    wall = time.perf_counter()
    t_alive = cluster.now
    cluster.update_meta("m1", b"v2")
    cluster.run_for(10)
    crash_at = cluster.now
    cluster.crash("m2")
    cluster.run_for(8 * 6 * max(1.0, math.log10(n)) * config.probe_interval)  # > max suspicion
    first = min(dead.seen.values()) if dead.seen else math.nan
    row["alive_update"] = alive.quantiles(t_alive, n - 1)
    row["dead_update"] = dead.quantiles(first, n - 1)
    row["dead_first_detection_s"] = round(first - crash_at, 3)
    row["convergence_wall_s"] = round(time.perf_counter() - wall, 2)
    row["serf_model_99_999_9999"] = SERF_MODEL.get(n)
    return row


def _markdown(rows: list[dict[str, object]]) -> str:
    lines = [
        "| N | bootstrap: virtual s / wall s (CPU s) | steady: virtual s / wall s (CPU s) | "
        "events/s wall | "
        "alive update 99 % / 99.9 % / 100 % (s) | dead update 99 % / 99.9 % / 100 % (s) | "
        "Serf model 99 % / 99.9 % / 99.99 % (s) |",
        "|---:|---|---:|---:|---|---|---|",
    ]
    for r in rows:
        a, d = r["alive_update"], r["dead_update"]
        assert isinstance(a, dict)
        assert isinstance(d, dict)
        model = SERF_MODEL.get(int(str(r["members"])))
        lines.append(
            f"| {r['members']} | {r['bootstrap_virtual_s']} / {r['bootstrap_wall_s']} "
            f"({r['bootstrap_cpu_s']}){'' if r['bootstrap_converged'] else ' not settled'} "
            f"| {r['virtual_s']} / {r['steady_wall_s']} ({r['steady_cpu_s']}) "
            f"| {r['events_per_wall_s']} | {a['t99']} / {a['t99.9']} / {a['t100']} "
            f"| {d['t99']} / {d['t99.9']} / {d['t100']} "
            f"| {' / '.join(map(str, model)) if model else '-'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns 0, or 1 when a size did not converge at bootstrap."""
    parser = argparse.ArgumentParser(prog="python -m bench.sim_scale", description=__doc__)
    parser.add_argument("--sizes", default="100,1000", help="comma-separated N (default 100,1000)")
    parser.add_argument("--virtual", type=float, default=60.0, help="steady-state virtual seconds")
    parser.add_argument("--settle-cap", type=float, default=120.0, help="bootstrap cap (virtual s)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv if argv is not None else [])
    rows = []
    for n in (int(v) for v in args.sizes.split(",")):
        print(f"sim_scale: N={n} ...", file=sys.stderr, flush=True)
        row = measure(n, args.virtual, args.settle_cap, args.seed, args.profile)
        if "profile" in row:
            print(row["profile"], file=sys.stderr)
        print(json.dumps({k: v for k, v in row.items() if k != "profile"}), flush=True)
        rows.append(row)
    table = _markdown(rows)
    print(table)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        clean = [{k: v for k, v in r.items() if k != "profile"} for r in rows]
        (args.out / "sim_scale.json").write_text(json.dumps(clean, indent=1) + "\n")
        (args.out / "sim_scale.md").write_text(table)
    return 0 if all(r["bootstrap_converged"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
