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

Also recorded per size: simulator datagrams and CPU microseconds per datagram during the
bootstrap, the process RSS after it (and the peak), and RSS per member record (the growth
over the bootstrap divided by the N^2 records the cluster holds): the inputs of the
N=10,000 extrapolation (`--extrapolate 10000`).

`--warm` replaces step 1 by a warm start (`swimguard.sim.warm_cluster`): the members start
knowing each other alive, their N tables sharing records until a member changes one, so
sizes whose join storm cannot be simulated here (N=10,000: ~67 GB, ~11 CPU hours) still run
steps 2 and 3 on the same core. Reported instead of the bootstrap: the warm start's time and
the RSS it adds per (member, member) pair.

Optionally `--profile` prints the top functions (cProfile) of the bootstrap and the
steady-state phase. `--digests` prints the trace digests of three fixed-seed scenarios
instead: equal digests before and after a change prove the change kept the behaviour.
Results go to stdout as a table and, with --out DIR, to DIR/sim_scale.json and .md.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import math
import pstats
import resource
import sys
import time
from pathlib import Path

import psutil

import swimguard
from swimguard.config import Config
from swimguard.protocol.events import Event, MemberFailed, MemberUpdated
from swimguard.protocol.scaling import retransmit_limit
from swimguard.sim.cluster import SimCluster, SimMember
from swimguard.sim.invariants import convergence_gaps
from swimguard.sim.network import LinkModel
from swimguard.sim.scenarios import start_cluster, warm_cluster

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
    n: int, virtual: float, settle_cap: float, seed: int, profile: bool, warm: bool = False
) -> dict[str, object]:
    """Bootstrap (or warm start), steady state and convergence for one size."""
    config = Config.lan(enable_compression=False)
    row: dict[str, object] = {"members": n, "virtual_s": virtual}
    row["start"] = "warm" if warm else "join"
    row["code"] = str(Path(swimguard.__file__).parent)
    process = psutil.Process()
    rss0 = process.memory_info().rss
    profiler = cProfile.Profile() if profile else None
    wall = time.perf_counter()
    cpu = time.process_time()
    if profiler is not None:
        profiler.enable()
    if warm:
        cluster = warm_cluster(n, seed=seed, config=config)
        converged = True  # by construction; a full check would build N^2 snapshots
        # The N tables are long-lived: without this every full cyclic-GC pass walks their
        # N^2 entries again (at N=10,000 about two thirds of the CPU went there).
        gc.collect()
        gc.freeze()
    else:
        cluster = start_cluster(n, seed=seed, config=config)
        converged = _settle(cluster, settle_cap)
    if profiler is not None:
        profiler.disable()
    boot_cpu = time.process_time() - cpu
    row["bootstrap_cpu_s"] = round(boot_cpu, 2)
    row["bootstrap_virtual_s"] = round(cluster.now, 2)
    row["bootstrap_wall_s"] = round(time.perf_counter() - wall, 2)
    row["bootstrap_converged"] = converged
    row["bootstrap_events"] = cluster.steps
    row["bootstrap_gaps"] = 0 if converged else len(convergence_gaps(cluster))
    datagrams = cluster.network.stats.sent
    row["bootstrap_datagrams"] = datagrams
    row["bootstrap_cpu_us_per_datagram"] = (
        round(boot_cpu / datagrams * 1e6, 1) if datagrams else None
    )
    rss1 = process.memory_info().rss
    row["rss_mb_after_bootstrap"] = round(rss1 / 2**20)
    row["rss_bytes_per_record"] = round((rss1 - rss0) / (n * n))
    if profiler is not None:
        row["profile"] = _top(profiler, "bootstrap")

    steps0 = cluster.steps
    profiler = cProfile.Profile() if profile else None
    wall = time.perf_counter()
    cpu = time.process_time()
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
        row["profile"] = str(row["profile"]) + _top(profiler, "steady state")

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
    cap = 8 * 6 * max(1.0, math.log10(n)) * config.probe_interval  # > max suspicion
    # Stopping once everyone has the news changes no figure (only first sightings count).
    cluster.run_until_true(lambda: len(dead.seen) >= n - 1, cluster.now + cap, 0.5)
    first = min(dead.seen.values()) if dead.seen else math.nan
    row["alive_update"] = alive.quantiles(t_alive, n - 1)
    row["dead_update"] = dead.quantiles(first, n - 1)
    row["dead_first_detection_s"] = round(first - crash_at, 3)
    row["convergence_wall_s"] = round(time.perf_counter() - wall, 2)
    row["serf_model_99_999_9999"] = SERF_MODEL.get(n)
    row["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return row


def _top(profiler: cProfile.Profile, title: str) -> str:
    buf = io.StringIO()
    buf.write(f"--- {title} ---\n")
    pstats.Stats(profiler, stream=buf).sort_stats("tottime").print_stats(25)
    return buf.getvalue()


def extrapolate(rows: list[dict[str, object]], target: int) -> dict[str, object]:
    """Bootstrap CPU and member-table memory at `target` members, from the largest size.

    Deliveries grow as N^2 * retransmit_limit(N) (every member re-gossips every join), so
    CPU(target) = CPU(n) * (target/n)^2 * limit(target)/limit(n) * g, where g is the
    growth of the CPU per datagram between the two largest measured sizes, per doubling,
    applied log2(target/n) times (1 when only one size was run). Memory: N^2 records of
    the largest size's RSS per record.
    """
    ordered = sorted(
        (r for r in rows if r.get("start", "join") == "join"), key=lambda r: int(str(r["members"]))
    )
    if not ordered:
        raise SystemExit("--extrapolate needs at least one size run with a join (not --warm)")
    big = ordered[-1]
    n = int(str(big["members"]))
    growth = 1.0
    if len(ordered) >= 2:
        small = ordered[-2]
        m = int(str(small["members"]))
        ratio = float(str(big["bootstrap_cpu_us_per_datagram"])) / float(
            str(small["bootstrap_cpu_us_per_datagram"])
        )
        growth = ratio ** (math.log2(target / n) / math.log2(n / m))
    mult = Config.lan().retransmit_mult
    limit_ratio = retransmit_limit(mult, target) / retransmit_limit(mult, n)
    cpu = float(str(big["bootstrap_cpu_s"])) * (target / n) ** 2 * limit_ratio * growth
    memory = float(str(big["rss_bytes_per_record"])) * target * target
    return {
        "members": target,
        "from_members": [int(str(r["members"])) for r in ordered[-2:]],
        "per_datagram_growth": round(growth, 2),
        "bootstrap_cpu_s": round(cpu),
        "bootstrap_cpu_h": round(cpu / 3600, 1),
        "member_table_gb": round(memory / 1e9, 1),
    }


def digests(join_sync_delay: float | None = None) -> list[str]:
    """Trace digests of three fixed scenarios (joins, meta update, crash, leave, restart).

    `join_sync_delay` overrides the config's (0 runs memberlist's rules, whose digests
    are the ones recorded before the join-time sync extension existed)."""
    extra = {} if join_sync_delay is None else {"join_sync_delay": join_sync_delay}
    out = []
    for n, compress, link, seed in (
        (60, False, None, 1),
        (60, True, LinkModel(loss=0.05, duplicate=0.02), 2),
        (200, False, None, 3),
    ):
        cluster = start_cluster(
            n,
            seed=seed,
            config=Config.lan(enable_compression=compress, **extra),
            link=link,
            trace=True,
        )
        cluster.run_for(20)
        cluster.update_meta("m1", b"v2")
        cluster.crash("m2")
        cluster.run_for(10)
        cluster.leave("m3")
        cluster.run_for(15)
        cluster.restart("m2", ["m0"])
        cluster.run_for(20)
        out.append(
            f"N={n} compress={compress} seed={seed} steps={cluster.steps} "
            f"digest={cluster.trace_digest()}"
        )
    return out


def _markdown(rows: list[dict[str, object]]) -> str:
    lines = [
        "| N | start: bootstrap virtual s / wall s (CPU s) | datagrams (CPU us each) | "
        "RSS after bootstrap MB (bytes/record) | steady: virtual s / wall s (CPU s) | "
        "events/s wall | "
        "alive update 99 % / 99.9 % / 100 % (s) | dead update 99 % / 99.9 % / 100 % (s) | "
        "Serf model 99 % / 99.9 % / 99.99 % (s) |",
        "|---:|---|---:|---:|---:|---:|---|---|---|",
    ]
    for r in rows:
        a, d = r["alive_update"], r["dead_update"]
        assert isinstance(a, dict)
        assert isinstance(d, dict)
        model = SERF_MODEL.get(int(str(r["members"])))
        if r.get("start", "join") == "warm":
            start = f"warm: {r['bootstrap_wall_s']} ({r['bootstrap_cpu_s']})"
        else:
            start = (
                f"join: {r['bootstrap_virtual_s']} / {r['bootstrap_wall_s']} "
                f"({r['bootstrap_cpu_s']}){'' if r['bootstrap_converged'] else ' not settled'}"
            )
        lines.append(
            f"| {r['members']} | {start} "
            f"| {r['bootstrap_datagrams']} ({r['bootstrap_cpu_us_per_datagram']}) "
            f"| {r['rss_mb_after_bootstrap']} ({r['rss_bytes_per_record']}) "
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
    parser.add_argument(
        "--warm", action="store_true", help="start converged (shared records) instead of joining"
    )
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--digests", action="store_true", help="print trace digests and exit")
    parser.add_argument(
        "--join-sync-delay",
        type=float,
        default=None,
        help="with --digests: Config.join_sync_delay (0 = memberlist's rules)",
    )
    parser.add_argument(
        "--extrapolate", type=int, default=None, help="estimate bootstrap CPU/memory at this N"
    )
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--combine",
        type=Path,
        nargs="+",
        default=None,
        help="merge the sim_scale.json of earlier runs (one size per process) instead of running",
    )
    args = parser.parse_args(argv if argv is not None else [])
    if args.digests:
        print(f"code: {Path(swimguard.__file__).parent}")
        for line in digests(args.join_sync_delay):
            print(line, flush=True)
        return 0
    rows: list[dict[str, object]] = []
    if args.combine:
        for path in args.combine:
            loaded = json.loads((path / "sim_scale.json").read_text())
            rows.extend(r for r in loaded if "members" in r)
        rows.sort(key=lambda r: int(str(r["members"])))
    for n in [] if args.combine else (int(v) for v in args.sizes.split(",")):
        print(f"sim_scale: N={n} ...", file=sys.stderr, flush=True)
        row = measure(n, args.virtual, args.settle_cap, args.seed, args.profile, args.warm)
        if "profile" in row:
            print(row["profile"], file=sys.stderr)
        print(json.dumps({k: v for k, v in row.items() if k != "profile"}), flush=True)
        rows.append(row)
    table = _markdown(rows)
    clean: list[dict[str, object]] = [{k: v for k, v in r.items() if k != "profile"} for r in rows]
    if args.extrapolate:
        estimate = extrapolate(rows, args.extrapolate)
        table += (
            f"\nExtrapolated bootstrap at N={estimate['members']} (from N="
            f"{estimate['from_members']}): {estimate['bootstrap_cpu_h']} CPU hours, member "
            f"tables {estimate['member_table_gb']} GB (see `extrapolate` in bench/sim_scale.py)\n"
        )
        clean.append({"extrapolation": estimate})
    print(table)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "sim_scale.json").write_text(json.dumps(clean, indent=1) + "\n")
        (args.out / "sim_scale.md").write_text(table)
    return 0 if all(r["bootstrap_converged"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
