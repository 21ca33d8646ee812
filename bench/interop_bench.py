"""Interop benchmark: failure detection in a mixed cluster of serf and swimguard agents.

A cluster of `--serf` Debian serf agents and `--swim` swimguard agent processes (default
10 + 10, LAN profile on both sides, all joined through serf agent s0) is formed on
127.0.0.1. Then `--kills` members are SIGKILLed one after the other, alternating serf and
swimguard victims (never the seed, never twice). For each kill, every surviving agent's
time to report the victim failed is measured:

* serf observers: arrival of the `serf: EventMemberFailed: <victim>` log line;
* swimguard observers: arrival of the `{"event": "member-failed", "name": <victim>}` line.

Both are timestamped by this process as the lines arrive on the pipes (milliseconds of
delay, same for both kinds). The table gives the median over all (kill, observer) pairs
per observer kind, split by victim kind, and the ratio swimguard / serf. Target from the
issue: swimguard observers within 1.1x of serf observers. Most observers learn of the
failure from the first declarer's `dead` gossip, so the last column adds the median (over
kills) of the earliest observer of each kind, which reflects its own suspicion timeout.

Run: `python -m bench.interop_bench [--serf 10] [--swim 10] [--kills 6] [--json PATH]`.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.serf_harness import SERF, Cluster, SerfAgent, SwimAgent, wait_for

TARGET_RATIO = 1.1


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.interop_bench", description=__doc__)
    p.add_argument("--serf", type=int, default=10, help="serf agents (>= 2)")
    p.add_argument("--swim", type=int, default=10, help="swimguard agents (>= 2)")
    p.add_argument("--kills", type=int, default=6, help="SIGKILLs, alternating victim kind")
    p.add_argument("--profile", default="lan", choices=["lan", "local"])
    p.add_argument("--settle", type=float, default=4.0, help="seconds between kills")
    p.add_argument("--detect-timeout", type=float, default=45.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", type=Path, help="write raw results here")
    p.add_argument("--keep", type=Path, help="keep agent logs in this directory")
    args = p.parse_args(argv)
    if args.serf < 2 or args.swim < 2:
        p.error("need at least 2 agents of each kind")
    if args.kills > (args.serf - 1) + args.swim:
        p.error("more kills than killable members")
    return args


def _serf_failed_at(agent: SerfAgent, victim: str, since: float) -> float | None:
    return agent.proc.log.find(f"EventMemberFailed: {victim} ", since)


def _swim_failed_at(agent: SwimAgent, victim: str, since: float) -> float | None:
    for ev in agent.events():
        if ev["_t"] >= since and ev.get("event") == "member-failed" and ev.get("name") == victim:
            return float(ev["_t"])
    return None


def _form(cluster: Cluster, args: argparse.Namespace) -> tuple[list[SerfAgent], list[SwimAgent]]:
    s0 = cluster.start_serf("s0", profile=args.profile, log_level="info")
    serfs = [s0] + [
        cluster.start_serf(f"s{i}", [s0.addr], profile=args.profile, log_level="info")
        for i in range(1, args.serf)
    ]
    swims = [cluster.start_swim(f"p{i}", [s0.addr], profile=args.profile) for i in range(args.swim)]
    everyone = {a.name for a in serfs} | {a.name for a in swims}
    wait_for(
        lambda: all(v == dict.fromkeys(everyone, "alive") for v in cluster.serf_views().values()),
        60,
        0.5,
        "serf agents to see everyone alive",
    )
    wait_for(
        lambda: all(
            {n for n, e in s.view().items() if e in ("member-join", "member-update")} == everyone
            for s in swims
        ),
        60,
        0.5,
        "swimguard agents to see everyone alive",
    )
    return serfs, swims


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Form the cluster, do the kills, return raw per-observer delays."""
    rng = random.Random(args.seed)
    kills: list[dict[str, Any]] = []
    with Cluster(args.keep, keep=args.keep is not None) as cluster:
        t_form = time.time()
        serfs, swims = _form(cluster, args)
        formed = time.time() - t_form
        time.sleep(args.settle)
        serf_pool = list(serfs[1:])
        swim_pool = list(swims)
        rng.shuffle(serf_pool)
        rng.shuffle(swim_pool)
        for i in range(args.kills):
            pool = serf_pool if (i % 2 == 0 and serf_pool) or not swim_pool else swim_pool
            victim = pool.pop()
            kind = "serf" if isinstance(victim, SerfAgent) else "swimguard"
            t0 = victim.proc.kill9()
            live_serf = [a for a in serfs if a.proc.alive]
            live_swim = [a for a in swims if a.proc.alive]

            def detected(
                live_serf: list[SerfAgent] = live_serf,
                live_swim: list[SwimAgent] = live_swim,
                name: str = victim.name,
                t0: float = t0,
            ) -> bool:
                return all(_serf_failed_at(a, name, t0) for a in live_serf) and all(
                    _swim_failed_at(a, name, t0) for a in live_swim
                )

            try:
                wait_for(detected, args.detect_timeout, 0.2, f"{victim.name} failed everywhere")
            except TimeoutError as exc:
                print(f"warning: {exc}", file=sys.stderr)
            serf_d = [
                (t - t0) if (t := _serf_failed_at(a, victim.name, t0)) else None for a in live_serf
            ]
            swim_d = [
                (t - t0) if (t := _swim_failed_at(a, victim.name, t0)) else None for a in live_swim
            ]
            kills.append(
                {
                    "victim": victim.name,
                    "victim_kind": kind,
                    "serf_observers": serf_d,
                    "swim_observers": swim_d,
                }
            )
            ms, mw = _fmt(_median(serf_d)), _fmt(_median(swim_d))
            print(
                f"kill {i + 1}/{args.kills}: {victim.name} ({kind}) "
                f"serf median {ms} s, swimguard median {mw} s",
                file=sys.stderr,
            )
            time.sleep(args.settle)
    return {"formed_s": formed, "kills": kills, "args": {k: str(v) for k, v in vars(args).items()}}


def _median(values: Sequence[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return statistics.median(got) if got else None


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    """Medians per (victim kind, observer kind) and the swimguard/serf ratios."""
    rows: dict[str, Any] = {}
    for victim_kind in ("serf", "swimguard", "all"):
        ks = [k for k in result["kills"] if victim_kind in ("all", k["victim_kind"])]
        serf_all = [d for k in ks for d in k["serf_observers"]]
        swim_all = [d for k in ks for d in k["swim_observers"]]
        ms, mw = _median(serf_all), _median(swim_all)
        # The earliest observer of each kind per kill: mostly its own suspicion timer firing,
        # whereas the median observer mostly hears the first declarer's dead message.
        first_serf = _median([min((d for d in k["serf_observers"] if d), default=None) for k in ks])
        first_swim = _median([min((d for d in k["swim_observers"] if d), default=None) for k in ks])
        rows[victim_kind] = {
            "serf_first_median_s": first_serf,
            "swim_first_median_s": first_swim,
            "kills": len(ks),
            "serf_median_s": ms,
            "serf_n": sum(d is not None for d in serf_all),
            "serf_missed": sum(d is None for d in serf_all),
            "swim_median_s": mw,
            "swim_n": sum(d is not None for d in swim_all),
            "swim_missed": sum(d is None for d in swim_all),
            "ratio": (mw / ms) if ms and mw else None,
        }
    return rows


def render(rows: dict[str, Any]) -> str:
    """The small table printed by `main`."""
    out = [
        "Time from SIGKILL to member-failed, median over (kill, observer) pairs",
        f"{'victims':<10} {'kills':>5} {'serf obs (s)':>14} {'swimguard obs (s)':>18} "
        f"{'ratio sg/serf':>14} {'first serf/sg (s)':>18}",
    ]
    for kind, r in rows.items():
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}x"
        serf_cell = f"{_fmt(r['serf_median_s'])} n={r['serf_n']}"
        swim_cell = f"{_fmt(r['swim_median_s'])} n={r['swim_n']}"
        first = f"{_fmt(r['serf_first_median_s'])}/{_fmt(r['swim_first_median_s'])}"
        out.append(
            f"{kind:<10} {r['kills']:>5} {serf_cell:>14} {swim_cell:>18} {ratio:>14} {first:>18}"
        )
        if r["serf_missed"] or r["swim_missed"]:
            out.append(
                f"{'':<10} missed reports: serf {r['serf_missed']}, swimguard {r['swim_missed']}"
            )
    overall = rows["all"]["ratio"]
    verdict = (
        "no ratio"
        if overall is None
        else ("target met" if overall <= TARGET_RATIO else "target NOT met")
    )
    out.append(f"target: swimguard within {TARGET_RATIO}x of serf -> {verdict}")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the table; 0 unless the run itself broke."""
    args = _parse(argv)
    if SERF is None:
        print("interop_bench: serf is not installed (apt-get install serf); skipped")
        return 0
    result = run(args)
    rows = summarize(result)
    result["summary"] = rows
    print(render(rows))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
